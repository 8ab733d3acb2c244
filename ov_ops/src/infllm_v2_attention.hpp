// InfLLMv2Attention: MiniCPM4's trainable sparse attention as an OpenVINO op that OWNS its KV cache.
// Inputs : 0 q [1,Hq,T,D] (after RoPE)  1 k [1,Hk,T,D] new rows only (after RoPE)  2 v [1,Hk,T,D] new rows only
//          3 position_ids [1,T] (i64/i32): the first position p0 says where the rows go
//            (0 starts a new sequence, p0 < cached length truncates the cache first, p0 > length is an error)
// Output : 0 [1,Hq,T,D]
// Attributes: see InfLLMConfig (dense_len, block_size, kernel_size, kernel_stride, init_blocks, window_blocks,
//             topk, variant, lse, scale), `layer` (the decoder layer index) and `cache` (optional, see below).
// State (f16 K/V + compressed keys) lives in the op instance: one sequence per compiled model (batch 1).
// Ops with the same non-empty `cache` id and `layer` share one state process-wide instead, so several compiled
// copies of one model (a dynamic-shape one for prompts, a static-shape one for one-token steps) continue the
// same sequence; the state lives while any of them does.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include <openvino/op/op.hpp>

#include "infllm_v2_kernel.hpp"

namespace cpmdesk {

class InfLLMv2Attention : public ov::op::Op {
public:
    OPENVINO_OP("InfLLMv2Attention", "cpmdesk");
    InfLLMv2Attention() = default;
    InfLLMv2Attention(const ov::OutputVector& args, const InfLLMConfig& cfg, int64_t layer);
    void validate_and_infer_types() override;
    std::shared_ptr<ov::Node> clone_with_new_inputs(const ov::OutputVector& new_args) const override;
    bool visit_attributes(ov::AttributeVisitor& visitor) override;
    bool evaluate(ov::TensorVector& outputs, const ov::TensorVector& inputs) const override;
    bool has_evaluate() const override { return true; }

    struct State {
        LayerState layer;
        std::mutex mutex;
    };

private:
    State& state() const;
    InfLLMConfig m_cfg;
    int64_t m_layer = 0;
    std::string m_cache;
    mutable std::shared_ptr<State> m_state;
    mutable std::mutex m_init;
};

}  // namespace cpmdesk
