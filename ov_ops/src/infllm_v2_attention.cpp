#include "infllm_v2_attention.hpp"

#include <cstdio>
#include <unordered_map>
#include <vector>

namespace cpmdesk {

InfLLMv2Attention::InfLLMv2Attention(const ov::OutputVector& args, const InfLLMConfig& cfg, int64_t layer)
    : Op(args), m_cfg(cfg), m_layer(layer) {
    constructor_validate_and_infer_types();
}

void InfLLMv2Attention::validate_and_infer_types() {
    NODE_VALIDATION_CHECK(this, get_input_size() == 4, "InfLLMv2Attention expects q, k, v, position_ids");
    NODE_VALIDATION_CHECK(this, m_cfg.block_size > 0 && m_cfg.block_size % 16 == 0,
                          "block_size must be a positive multiple of 16");
    NODE_VALIDATION_CHECK(this, m_cfg.kernel_stride > 0 && m_cfg.block_size % m_cfg.kernel_stride == 0,
                          "block_size must be a multiple of kernel_stride");
    NODE_VALIDATION_CHECK(this, m_cfg.kernel_size >= m_cfg.kernel_stride, "kernel_size must be >= kernel_stride");
    NODE_VALIDATION_CHECK(this, m_cfg.topk > 0 && m_cfg.init_blocks >= 0 && m_cfg.window_blocks >= 0,
                          "topk must be positive, init_blocks and window_blocks non-negative");
    NODE_VALIDATION_CHECK(this, m_cfg.variant == "minicpm4" || m_cfg.variant == "minicpm4.1",
                          "variant must be minicpm4 or minicpm4.1");
    NODE_VALIDATION_CHECK(this, m_cfg.lse == "exact" || m_cfg.lse == "coarse", "lse must be exact or coarse");
    NODE_VALIDATION_CHECK(this, m_cfg.precision == "auto" || m_cfg.precision == "bf16" || m_cfg.precision == "f32",
                          "precision must be auto, bf16 or f32");
    set_output_type(0, get_input_element_type(0), get_input_partial_shape(0));
}

std::shared_ptr<ov::Node> InfLLMv2Attention::clone_with_new_inputs(const ov::OutputVector& a) const {
    auto op = std::make_shared<InfLLMv2Attention>(a, m_cfg, m_layer);
    op->m_cache = m_cache;
    return op;
}

bool InfLLMv2Attention::visit_attributes(ov::AttributeVisitor& v) {
    v.on_attribute("layer", m_layer);
    v.on_attribute("dense_len", m_cfg.dense_len);
    v.on_attribute("block_size", m_cfg.block_size);
    v.on_attribute("kernel_size", m_cfg.kernel_size);
    v.on_attribute("kernel_stride", m_cfg.kernel_stride);
    v.on_attribute("init_blocks", m_cfg.init_blocks);
    v.on_attribute("window_blocks", m_cfg.window_blocks);
    v.on_attribute("topk", m_cfg.topk);
    v.on_attribute("variant", m_cfg.variant);
    v.on_attribute("lse", m_cfg.lse);
    v.on_attribute("scale", m_cfg.scale);
    v.on_attribute("precision", m_cfg.precision);
    const std::string cache = m_cache;
    v.on_attribute("cache", m_cache);  // absent in IRs written before it existed: stays ""
    if (m_cache != cache) {
        std::lock_guard<std::mutex> lock(m_init);
        m_state.reset();
    }
    return true;
}

InfLLMv2Attention::State& InfLLMv2Attention::state() const {
    std::lock_guard<std::mutex> lock(m_init);
    if (m_state) return *m_state;
    if (m_cache.empty()) {
        m_state = std::make_shared<State>();
        return *m_state;
    }
    static std::mutex registry_mutex;
    static std::unordered_map<std::string, std::weak_ptr<State>> registry;
    std::lock_guard<std::mutex> registry_lock(registry_mutex);
    for (auto it = registry.begin(); it != registry.end();) it = it->second.expired() ? registry.erase(it) : ++it;
    auto& slot = registry[m_cache + "/" + std::to_string(m_layer)];
    m_state = slot.lock();
    if (!m_state) {
        m_state = std::make_shared<State>();
        slot = m_state;
    }
    return *m_state;
}

namespace {
const float* as_f32(const ov::Tensor& t, std::vector<float>& buf) {
    const auto et = t.get_element_type();
    if (et == ov::element::f32) return t.data<const float>();
    buf.resize(t.get_size());
    if (et == ov::element::f16) {
        const auto* p = t.data<const ov::float16>();
        for (size_t i = 0; i < buf.size(); ++i) buf[i] = float(p[i]);
    } else if (et == ov::element::bf16) {
        const auto* p = t.data<const ov::bfloat16>();
        for (size_t i = 0; i < buf.size(); ++i) buf[i] = float(p[i]);
    } else {
        OPENVINO_THROW("InfLLMv2Attention: unsupported element type ", et);
    }
    return buf.data();
}
}  // namespace

bool InfLLMv2Attention::evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const {
    State& st = state();
    std::lock_guard<std::mutex> lock(st.mutex);
    const auto& qs = inputs[0].get_shape();
    const auto& ks = inputs[1].get_shape();
    OPENVINO_ASSERT(qs.size() == 4 && ks.size() == 4 && qs[0] == 1 && ks[0] == 1,
                    "InfLLMv2Attention: q/k/v must be [1,H,T,D] (batch 1)");
    OPENVINO_ASSERT(inputs[2].get_shape() == ks && ks[2] == qs[2] && ks[3] == qs[3],
                    "InfLLMv2Attention: q, k, v shapes disagree");
    const size_t Hq = qs[1], T = qs[2], D = qs[3], Hk = ks[1];
    const auto& pt = inputs[3];
    OPENVINO_ASSERT(pt.get_size() >= 1 || T == 0, "InfLLMv2Attention: position_ids is empty");
    outputs[0].set_shape(qs);
    if (T == 0) return true;
    const int64_t p0 = pt.get_element_type() == ov::element::i64 ? pt.data<const int64_t>()[0]
                                                                  : pt.data<const int32_t>()[0];
    OPENVINO_ASSERT(p0 >= 0, "InfLLMv2Attention: negative position");
    std::vector<float> qb, kb, vb;
    const float* q = as_f32(inputs[0], qb);
    const float* k = as_f32(inputs[1], kb);
    const float* v = as_f32(inputs[2], vb);
    const bool out_f32 = outputs[0].get_element_type() == ov::element::f32;
    std::vector<float> ob;
    float* o = out_f32 ? outputs[0].data<float>() : (ob.resize(outputs[0].get_size()), ob.data());
    try {
        st.layer.run(m_cfg, Hq, Hk, T, D, static_cast<size_t>(p0), q, k, v, o);
    } catch (const std::exception& e) {
        OPENVINO_THROW("layer ", m_layer, ": ", e.what());
    }
    if (const char* path = LayerState::profile_path()) {  // one JSON line per call (bench/long_context.py reads them)
        const RunProfile& p = st.layer.profile();
        if (FILE* f = std::fopen(path, "a")) {
            std::fprintf(f,
                         "{\"layer\": %lld, \"T\": %zu, \"N\": %zu, \"bf16\": %s, \"int8\": %s, \"dense\": %s, \"wall_s\": %.6f, "
                         "\"append_s\": %.6f, \"score_cpu_s\": %.6f, \"select_cpu_s\": %.6f, \"attend_cpu_s\": %.6f}\n",
                         static_cast<long long>(m_layer), p.T, p.N, p.bf16 ? "true" : "false",
                         p.int8 ? "true" : "false", p.dense ? "true" : "false", p.wall, p.append, p.score, p.select, p.attend);
            std::fclose(f);
        }
    }
    if (!out_f32) {
        if (outputs[0].get_element_type() == ov::element::f16) {
            auto* p = outputs[0].data<ov::float16>();
            for (size_t i = 0; i < ob.size(); ++i) p[i] = ov::float16(ob[i]);
        } else {
            auto* p = outputs[0].data<ov::bfloat16>();
            for (size_t i = 0; i < ob.size(); ++i) p[i] = ov::bfloat16(ob[i]);
        }
    }
    return true;
}

}  // namespace cpmdesk
