<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>MainWindow</name>
    <message>
        <source>New chat</source>
        <translation>新对话</translation>
    </message>
    <message>
        <source>Rename</source>
        <translation>重命名</translation>
    </message>
    <message>
        <source>Delete</source>
        <translation>删除</translation>
    </message>
    <message>
        <source>Search chats</source>
        <translation>搜索对话</translation>
    </message>
    <message>
        <source>Reasoning</source>
        <translation>深度思考</translation>
    </message>
    <message>
        <source>Send</source>
        <translation>发送</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Export chat to Markdown…</source>
        <translation>导出对话为 Markdown…</translation>
    </message>
    <message>
        <source>Settings…</source>
        <translation>设置…</translation>
    </message>
    <message>
        <source>Models…</source>
        <translation>模型…</translation>
    </message>
    <message>
        <source>&amp;Chat</source>
        <translation>对话(&amp;C)</translation>
    </message>
    <message>
        <source>Loading {0}…</source>
        <translation>正在加载 {0}…</translation>
    </message>
    <message>
        <source>Let the model reason before it answers</source>
        <translation>让模型先思考再回答</translation>
    </message>
    <message>
        <source>This model cannot switch reasoning on or off</source>
        <translation>此模型不支持切换思考模式</translation>
    </message>
    <message>
        <source>Device, draft and context changes apply when this answer ends.</source>
        <translation>设备、草稿模型和上下文的更改将在本次回答结束后生效。</translation>
    </message>
    <message>
        <source>Applying the settings changed during the answer…</source>
        <translation>正在应用回答期间更改的设置…</translation>
    </message>
    <message>
        <source>Max new tokens is {0}: the model's context is {1} tokens.</source>
        <translation>最大新词元数为 {0}：模型的上下文为 {1} 个词元。</translation>
    </message>
    <message>
        <source>The new settings apply from the next answer.</source>
        <translation>新设置将从下一次回答起生效。</translation>
    </message>
</context>
<context>
    <name>SettingsDialog</name>
    <message>
        <source>Settings</source>
        <translation>设置</translation>
    </message>
    <message>
        <source>System prompt</source>
        <translation>系统提示词</translation>
    </message>
    <message>
        <source>Optional instructions for every new chat</source>
        <translation>每个新对话的可选指令</translation>
    </message>
    <message>
        <source>Max new tokens</source>
        <translation>最大生成长度</translation>
    </message>
    <message>
        <source>Temperature (0 = greedy)</source>
        <translation>温度（0 = 贪心）</translation>
    </message>
    <message>
        <source>Top-p</source>
        <translation>Top-p</translation>
    </message>
    <message>
        <source>Top-k (0 = off)</source>
        <translation>Top-k（0 = 关闭）</translation>
    </message>
    <message>
        <source>Repetition penalty</source>
        <translation>重复惩罚</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Theme</source>
        <translation>主题</translation>
    </message>
    <message>
        <source>Language</source>
        <translation>语言</translation>
    </message>
    <message>
        <source>Follow system</source>
        <translation>跟随系统</translation>
    </message>
    <message>
        <source>Light</source>
        <translation>浅色</translation>
    </message>
    <message>
        <source>Dark</source>
        <translation>深色</translation>
    </message>
    <message>
        <source>At most {0}: the context holds {1} tokens, prompt included</source>
        <translation>最多 {0}：上下文共 {1} 个词元（含提示词）</translation>
    </message>
</context>
<context>
    <name>ModelManager</name>
    <message>
        <source>Models</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>大小</translation>
    </message>
    <message>
        <source>Quantization</source>
        <translation>量化</translation>
    </message>
    <message>
        <source>Source</source>
        <translation>来源</translation>
    </message>
    <message>
        <source>Use selected</source>
        <translation>使用所选</translation>
    </message>
    <message>
        <source>Add a local folder…</source>
        <translation>添加本地文件夹…</translation>
    </message>
    <message>
        <source>Download and export</source>
        <translation>下载并导出</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Added {0}</source>
        <translation>已添加 {0}</translation>
    </message>
    <message>
        <source>Ready: {0}</source>
        <translation>就绪：{0}</translation>
    </message>
</context>
<context>
    <name>Transcript</name>
    <message numerus="yes">
        <source>Show %n earlier message(s)</source>
        <translation>
            <numerusform>显示更早的 %n 条消息</numerusform>
        </translation>
    </message>
</context>
</TS>
