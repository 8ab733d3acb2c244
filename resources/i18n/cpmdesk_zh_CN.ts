<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>MainWindow</name>
    <message>
        <source>Tools</source>
        <translation>工具</translation>
    </message>
    <message>
        <source>Let the model call the tools of your MCP servers (Settings → Tools); every call asks you first</source>
        <translation>让模型调用你的 MCP 服务器中的工具（设置 → 工具）；每次调用前都会先征求你的同意</translation>
    </message>
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
    <message>
        <source>Rename chat</source>
        <translation>重命名对话</translation>
    </message>
    <message>
        <source>Delete chat</source>
        <translation>删除对话</translation>
    </message>
    <message>
        <source>Chats</source>
        <translation>对话列表</translation>
    </message>
    <message>
        <source>Conversation</source>
        <translation>对话内容</translation>
    </message>
    <message>
        <source>Message</source>
        <translation>消息</translation>
    </message>
    <message>
        <source>Message cpmdesk  (Enter sends, Shift+Enter for a new line, /think or /no_think)</source>
        <translation>给 cpmdesk 发消息（Enter 发送，Shift+Enter 换行，/think 或 /no_think）</translation>
    </message>
    <message>
        <source>Focus the message box</source>
        <translation>转到消息框</translation>
    </message>
    <message>
        <source>Regenerate the last answer</source>
        <translation>重新生成上一条回答</translation>
    </message>
    <message>
        <source>Stop the answer</source>
        <translation>停止回答</translation>
    </message>
    <message>
        <source>&amp;Help</source>
        <translation>帮助(&amp;H)</translation>
    </message>
    <message>
        <source>Open log folder</source>
        <translation>打开日志文件夹</translation>
    </message>
    <message>
        <source>Privacy &amp;&amp; data…</source>
        <translation>隐私与数据…</translation>
    </message>
    <message>
        <source>Documents…</source>
        <translation>文档…</translation>
    </message>
    <message>
        <source>Answer from your own documents, with numbered sources (Chat → Documents… to add files)</source>
        <translation>根据你自己的文档回答，并标注来源编号（在“对话 → 文档…”中添加文件）</translation>
    </message>
    <message>
        <source>More menus</source>
        <translation>更多菜单</translation>
    </message>
    <message>
        <source>Write a report…</source>
        <translation>撰写报告…</translation>
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
    <message>
        <source>You</source>
        <translation>你</translation>
    </message>
    <message>
        <source>Assistant</source>
        <translation>助手</translation>
    </message>
    <message>
        <source>Edit</source>
        <translation>编辑</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <source>Regenerate</source>
        <translation>重新生成</translation>
    </message>
    <message>
        <source>Tool call</source>
        <translation>工具调用</translation>
    </message>
    <message>
        <source>Tool result</source>
        <translation>工具结果</translation>
    </message>
    <message>
        <source>Sources</source>
        <translation>来源</translation>
    </message>
    <message>
        <source>Thinking…</source>
        <translation>思考中…</translation>
    </message>
    <message>
        <source>Thought for {0} s</source>
        <translation>已思考 {0} 秒</translation>
    </message>
    <message>
        <source>Stopped</source>
        <translation>已停止</translation>
    </message>
    <message>
        <source>Failed</source>
        <translation>失败</translation>
    </message>
    <message>
        <source>Interrupted: the app closed while answering</source>
        <translation>已中断：回答时应用被关闭</translation>
    </message>
</context>
<context>
    <name>HeaderBar</name>
    <message>
        <source>Tools</source>
        <translation>工具</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Model</source>
        <translation>模型</translation>
    </message>
    <message>
        <source>The model that answers: size, quantization, draft and context</source>
        <translation>回答所用的模型：大小、量化、草稿模型和上下文</translation>
    </message>
    <message>
        <source>Where the model runs (applies after the current answer)</source>
        <translation>模型运行的设备（当前回答结束后生效）</translation>
    </message>
    <message>
        <source>Reasoning</source>
        <translation>深度思考</translation>
    </message>
    <message>
        <source>Documents</source>
        <translation>文档</translation>
    </message>
    <message>
        <source>Loading {0}…</source>
        <translation>正在加载 {0}…</translation>
    </message>
    <message>
        <source>Loading model…</source>
        <translation>正在加载模型…</translation>
    </message>
    <message>
        <source>No model loaded</source>
        <translation>未加载模型</translation>
    </message>
    <message>
        <source>Manage models…</source>
        <translation>管理模型…</translation>
    </message>
    <message>
        <source>draft on</source>
        <translation>草稿模型开</translation>
    </message>
    <message>
        <source>draft off</source>
        <translation>草稿模型关</translation>
    </message>
    <message>
        <source>{0} tokens</source>
        <translation>{0} 词元</translation>
    </message>
</context>
<context>
    <name>WelcomePanel</name>
    <message>
        <source>Explain the Pythagorean theorem with a formula</source>
        <translation>用公式解释勾股定理</translation>
    </message>
    <message>
        <source>Write a Python function that tests for primes</source>
        <translation>写一个判断质数的 Python 函数</translation>
    </message>
    <message>
        <source>Give me three tips for a clear email</source>
        <translation>给我三条写清楚邮件的建议</translation>
    </message>
    <message>
        <source>Translate “Good morning” into French</source>
        <translation>把“早上好”翻译成法语</translation>
    </message>
    <message>
        <source>Welcome</source>
        <translation>欢迎</translation>
    </message>
    <message>
        <source>What can I help you with?</source>
        <translation>有什么可以帮你？</translation>
    </message>
    <message>
        <source>Try one of these:</source>
        <translation>试试这些：</translation>
    </message>
    <message>
        <source>Example prompt: {0}</source>
        <translation>示例提示：{0}</translation>
    </message>
    <message>
        <source>Everything runs on this computer. Answer from your own files with Documents, or add more models.</source>
        <translation>一切都在本机运行。用“文档”根据你自己的文件回答，或添加更多模型。</translation>
    </message>
    <message>
        <source>Add documents…</source>
        <translation>添加文档…</translation>
    </message>
    <message>
        <source>Add documents</source>
        <translation>添加文档</translation>
    </message>
    <message>
        <source>Add models…</source>
        <translation>添加模型…</translation>
    </message>
    <message>
        <source>Add models</source>
        <translation>添加模型</translation>
    </message>
    <message>
        <source>Loading model…</source>
        <translation>正在加载模型…</translation>
    </message>
    <message>
        <source>No model loaded</source>
        <translation>未加载模型</translation>
    </message>
    <message>
        <source>Choose or add one in Models…</source>
        <translation>在“模型…”中选择或添加一个</translation>
    </message>
    <message>
        <source>Loading {0}…</source>
        <translation>正在加载 {0}…</translation>
    </message>
    <message>
        <source>Size: {0}</source>
        <translation>大小：{0}</translation>
    </message>
    <message>
        <source>Quantization: {0}</source>
        <translation>量化：{0}</translation>
    </message>
    <message>
        <source>Context: {0} tokens</source>
        <translation>上下文：{0} 词元</translation>
    </message>
    <message>
        <source>Model: {0}</source>
        <translation>模型：{0}</translation>
    </message>
    <message>
        <source>draft on</source>
        <translation>草稿模型开</translation>
    </message>
    <message>
        <source>draft off</source>
        <translation>草稿模型关</translation>
    </message>
</context>
<context>
    <name>ApiPage</name>
    <message>
        <source>Serve the model to other apps (OpenAI-compatible API)</source>
        <translation>向其他应用提供模型（OpenAI 兼容 API）</translation>
    </message>
    <message>
        <source>Copy</source>
        <translation>复制</translation>
    </message>
    <message>
        <source>Renew</source>
        <translation>更新</translation>
    </message>
    <message>
        <source>Port (on 127.0.0.1)</source>
        <translation>端口（127.0.0.1 上）</translation>
    </message>
    <message>
        <source>Token</source>
        <translation>令牌</translation>
    </message>
    <message>
        <source>Other apps send it as 'Authorization: Bearer &lt;token&gt;'; the base URL is http://127.0.0.1:PORT/v1. Renew makes the old token stop working.</source>
        <translation>其他应用以 'Authorization: Bearer &lt;token&gt;' 发送它；基础 URL 为 http://127.0.0.1:PORT/v1。更新后旧令牌即失效。</translation>
    </message>
</context>
<context>
    <name>ApprovalDialog</name>
    <message>
        <source>Run a tool?</source>
        <translation>运行工具？</translation>
    </message>
    <message>
        <source>The model wants to run &lt;b&gt;{0}&lt;/b&gt; from the MCP server &lt;b&gt;{1}&lt;/b&gt; with these arguments:</source>
        <translation>模型想要运行 MCP 服务器 &lt;b&gt;{1}&lt;/b&gt; 的 &lt;b&gt;{0}&lt;/b&gt;，参数如下：</translation>
    </message>
    <message>
        <source>Allow once</source>
        <translation>允许一次</translation>
    </message>
    <message>
        <source>Always for this tool</source>
        <translation>此工具始终允许</translation>
    </message>
    <message>
        <source>Deny</source>
        <translation>拒绝</translation>
    </message>
</context>
<context>
    <name>McpPage</name>
    <message>
        <source>Server / tool</source>
        <translation>服务器 / 工具</translation>
    </message>
    <message>
        <source>Details</source>
        <translation>详情</translation>
    </message>
    <message>
        <source>Add…</source>
        <translation>添加…</translation>
    </message>
    <message>
        <source>Edit…</source>
        <translation>编辑…</translation>
    </message>
    <message>
        <source>Remove</source>
        <translation>移除</translation>
    </message>
    <message>
        <source>List tools</source>
        <translation>列出工具</translation>
    </message>
    <message>
        <source>Start the servers and ask them for their tools</source>
        <translation>启动服务器并获取其工具列表</translation>
    </message>
    <message>
        <source>Servers from {0}. Every tool call asks you first.</source>
        <translation>服务器来自 {0}。每次调用工具前都会先征求你的同意。</translation>
    </message>
    <message>
        <source>Asking the servers for their tools…</source>
        <translation>正在向服务器获取工具…</translation>
    </message>
    <message>
        <source>{0} tools from {1} servers; {2} could not be reached.</source>
        <translation>来自 {1} 个服务器的 {0} 个工具；{2} 个无法连接。</translation>
    </message>
    <message>
        <source>{0} tools from {1} servers.</source>
        <translation>来自 {1} 个服务器的 {0} 个工具。</translation>
    </message>
    <message>
        <source>Tools</source>
        <translation>工具</translation>
    </message>
    <message>
        <source>Cannot write {0}: {1}</source>
        <translation>无法写入 {0}：{1}</translation>
    </message>
</context>
<context>
    <name>ServerDialog</name>
    <message>
        <source>MCP server</source>
        <translation>MCP 服务器</translation>
    </message>
    <message>
        <source>Command (stdio)</source>
        <translation>命令（stdio）</translation>
    </message>
    <message>
        <source>URL (streamable HTTP)</source>
        <translation>URL（可流式 HTTP）</translation>
    </message>
    <message>
        <source>Name</source>
        <translation>名称</translation>
    </message>
    <message>
        <source>Kind</source>
        <translation>类型</translation>
    </message>
    <message>
        <source>Command</source>
        <translation>命令</translation>
    </message>
    <message>
        <source>Environment</source>
        <translation>环境变量</translation>
    </message>
    <message>
        <source>URL</source>
        <translation>URL</translation>
    </message>
    <message>
        <source>Timeout per call</source>
        <translation>每次调用超时</translation>
    </message>
    <message>
        <source>Give the server a name of its own</source>
        <translation>为服务器起一个独有的名称</translation>
    </message>
</context>
<context>
    <name>ReportDialog</name>
    <message>
        <source>Write a report</source>
        <translation>撰写报告</translation>
    </message>
    <message>
        <source>What should the report be about?</source>
        <translation>报告的主题是什么？</translation>
    </message>
    <message>
        <source>Report topic</source>
        <translation>报告主题</translation>
    </message>
    <message>
        <source>Write</source>
        <translation>撰写</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>停止</translation>
    </message>
    <message>
        <source>Save…</source>
        <translation>保存…</translation>
    </message>
    <message>
        <source>Each section is written from your documents, and every cited sentence is checked against its passage.</source>
        <translation>每一节都根据你的文档撰写，每个带引用的句子都会与其引用的段落核对。</translation>
    </message>
    <message>
        <source>Report</source>
        <translation>报告</translation>
    </message>
    <message>
        <source>No model is loaded yet.</source>
        <translation>尚未加载模型。</translation>
    </message>
    <message>
        <source>No documents yet: add files or a folder in Chat → Documents…</source>
        <translation>还没有文档：请在 对话 → 文档… 中添加文件或文件夹</translation>
    </message>
    <message>
        <source>Planning the outline…</source>
        <translation>正在规划提纲…</translation>
    </message>
    <message>
        <source>Stopping…</source>
        <translation>正在停止…</translation>
    </message>
    <message>
        <source>Writing section {0} of {1}: {2}</source>
        <translation>正在撰写第 {0} 节（共 {1} 节）：{2}</translation>
    </message>
    <message>
        <source>Kept from last time: {0}</source>
        <translation>保留上次已完成的部分：{0}</translation>
    </message>
    <message>
        <source>Done: {0} sections, {1} references.</source>
        <translation>完成：{0} 节，{1} 条参考文献。</translation>
    </message>
    <message>
        <source>Stopped: {0} of {1} sections are written. Write again to finish.</source>
        <translation>已停止：已完成 {0} 节（共 {1} 节）。再次点击“撰写”即可继续完成。</translation>
    </message>
    <message>
        <source>The report could not be written: {0}</source>
        <translation>无法撰写报告：{0}</translation>
    </message>
    <message>
        <source>Could not save the report: {0}</source>
        <translation>无法保存报告：{0}</translation>
    </message>
    <message>
        <source>Saved to {0}</source>
        <translation>已保存到 {0}</translation>
    </message>
    <message>
        <source>Save the report</source>
        <translation>保存报告</translation>
    </message>
    <message>
        <source>Markdown (*.md);;Web page (*.html);;PDF (*.pdf)</source>
        <translation>Markdown (*.md);;网页 (*.html);;PDF (*.pdf)</translation>
    </message>
</context>
</TS>
