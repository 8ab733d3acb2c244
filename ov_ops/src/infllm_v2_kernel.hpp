// InfLLM v2 attention math on CPU: the per-layer KV state (f16, appended in place, with incrementally
// maintained compressed keys) and the prefill/decode kernel. Batch 1. See ov_ops/infllm_v2_reference.py
// for the same math in NumPy.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace cpmdesk {

struct InfLLMConfig {
    int64_t dense_len = 8192;     // total length below which attention is dense; <= 0: always sparse
    int64_t block_size = 64;      // KV block (multiple of 16 and of kernel_stride)
    int64_t kernel_size = 32;     // fine compressed-key window
    int64_t kernel_stride = 16;   // fine compressed-key stride
    int64_t init_blocks = 1;      // leading blocks always attended
    int64_t window_blocks = 32;   // local blocks (window_size / block_size)
    int64_t topk = 64;            // selected blocks (meaning per variant, see the spec)
    std::string variant = "minicpm4";  // "minicpm4": window outside top-k; "minicpm4.1": forced local blocks
    std::string lse = "exact";         // "exact": normalise over fine kernels; "coarse": over 4x kernels
    float scale = 0.f;                 // <= 0: 1/sqrt(head_dim)
    // "bf16": bf16 K/V and bf16 dot products (f32 accumulation and softmax, f32 block scoring) when the CPU has
    // AVX512-BF16, else f16 K/V with f32 arithmetic; "f32": always the latter; "auto": "bf16", and in sparse mode
    // (past dense_len) QK^T in int8 and block scoring with bf16 dot products (as the official CUDA kernels score in
    // bf16) where the CPU also has AVX512-VNNI (infllm_v2_int8.hpp).
    // CPMDESK_INFLLM_PRECISION=f32 or =bf16 in the environment caps it the same way.
    std::string precision = "auto";
};

// Where one run() spent its time (filled only when CPMDESK_INFLLM_PROFILE names a file to append JSON lines to).
// score/select/attend are CPU seconds summed over threads; wall/append are wall seconds.
struct RunProfile {
    double wall = 0, append = 0, score = 0, select = 0, attend = 0;
    size_t T = 0, N = 0;
    bool bf16 = false, int8 = false, dense = false;
};

// Keys in 16-key transposed tiles ([tile][D][16]) so one load feeds all query heads of a group.
template <class T>
struct TiledKeys {
    std::vector<T> data;
    size_t D = 0, cap_tiles = 0;
    void reserve(size_t rows);
    T* tile(size_t t) { return data.data() + t * D * 16; }
    const T* tile(size_t t) const { return data.data() + t * D * 16; }
    void set_row(size_t i, const T* row);
    void get_row(size_t i, float* out) const;
};

struct GroupState {             // one KV head
    TiledKeys<uint16_t> K;      // f16 keys (post-RoPE); bf16 mode: bf16 in pair tiles (infllm_v2_bf16.hpp)
    std::vector<uint16_t> V;    // f16 values, row-major [cap][D]; bf16 mode: bf16, key pairs interleaved
    TiledKeys<float> C1, C2;    // fine / coarse compressed keys (means of keys)
    // int8 mode: keys minus `mean` quantized per key in quad tiles (infllm_v2_int8.hpp) and their scales; `mean`
    // is fixed at the first append after a reset (any fixed vector leaves the softmax unchanged)
    std::vector<uint8_t> K8;
    std::vector<float> K8s, mean;
    // int8 mode: the fine compressed keys again in bf16 pair tiles (as K in bf16 mode) for bf16 block scoring
    std::vector<uint16_t> C1b;
};

class LayerState {
public:
    // Append T new rows at absolute position p0 (0 resets, p0 < len truncates) and compute the attention
    // of the T queries. q: [Hq][T][D], k/v: [Hk][T][D], out: [Hq][T][D], all f32.
    void run(const InfLLMConfig& cfg, size_t Hq, size_t Hk, size_t T, size_t D, size_t p0, const float* q,
             const float* k, const float* v, float* out);
    size_t length() const { return len_; }
    const RunProfile& profile() const { return prof_; }
    static const char* profile_path();  // CPMDESK_INFLLM_PROFILE or nullptr

private:
    void reset(size_t Hk, size_t D, bool bf16, bool int8);
    void truncate(size_t p0, const InfLLMConfig& cfg);
    void append(const InfLLMConfig& cfg, size_t T, const float* k, const float* v);
    std::vector<GroupState> groups_;
    bool bf16_ = false, int8_ = false;
    RunProfile prof_;
    size_t Hk_ = 0, D_ = 0, len_ = 0, cap_ = 0, n1_ = 0, n2_ = 0;
};

}  // namespace cpmdesk
