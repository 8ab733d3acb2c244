// The bf16 dot-product kernels of InfLLMv2Attention (AVX512-BF16 `vdpbf16ps`: 32 bf16 products per instruction,
// accumulated in f32). Compiled with per-function target attributes, so the library still loads on CPUs without
// AVX512-BF16; call them only when available() says so. Plain pointers only (no STL in this translation unit).
#pragma once
#include <cstddef>
#include <cstdint>

namespace cpmdesk {
namespace bf16 {

// The library was built with the bf16 kernels (x86-64 GCC/Clang) and this CPU has AVX512-BF16.
bool available();

// f32 -> bf16 bits, round to nearest even (NaN stays NaN).
uint16_t from_f32(float x);
inline float to_f32(uint16_t b) {
    const uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
}

// Key storage: 16-key tiles of pairs, [tile][D/2][16][2] (dims 2j and 2j+1 of a key side by side).
inline size_t pair_offset(size_t i, size_t d, size_t D) { return (i / 16) * D * 16 + (d / 2) * 32 + (i % 16) * 2 + d % 2; }
// Store row x[D] as row i of such tiles.
inline void store_row(const float* x, size_t D, uint16_t* tiles, size_t i) {
    for (size_t d = 0; d < D; ++d) tiles[pair_offset(i, d, D)] = from_f32(x[d]);
}
// Value storage: key pairs interleaved, [N/2][D][2] (keys 2i and 2i+1 of a dim side by side).

// out[i*ostride + 16*t + l] = sum_d q[i][d] * key(16*t + l)[d] for M bf16 query rows ([M][D]) and `tiles`
// consecutive key tiles.
void tiles_scores(const uint16_t* q, size_t M, size_t D, const uint16_t* tiles_begin, size_t tiles, float* out,
                  size_t ostride);

// out[k] = bf16(exp(x[k] - m)) for k < n16 (a multiple of 16; x = -inf gives 0); returns the f32 sum of the
// exponentials. A cubic for 2^f: relative error 1.4e-4, far below the bf16 rounding of the result.
float exp_to_bf16(const float* x, size_t n16, float m, uint16_t* out);

// acc[i][:] += sum_k p[i][k] * V[k][:] for M rows over nk keys (p: bf16 rows with pstride (even), p[nk] = 0 when
// nk is odd; V: pair-interleaved values starting at an even key).
void pv(const uint16_t* p, size_t M, size_t pstride, size_t nk, const uint16_t* V, size_t D, float* acc);

}  // namespace bf16
}  // namespace cpmdesk
