// The int8 QK^T kernel of InfLLMv2Attention's sparse mode (AVX512-VNNI `vpdpbusd`: 64 u8 x s8 products per
// instruction, accumulated in int32), as SageAttention does for QK^T: keys smoothed by a fixed per-head mean (the
// softmax does not change when every score of a query moves by the same q.mean) and quantized per key, query rows
// quantized per row. Compiled with per-function target attributes; call only when available() says so.
#pragma once
#include <cstddef>
#include <cstdint>

namespace cpmdesk {
namespace i8 {

// The library was built with the int8 kernel (x86-64 GCC/Clang) and this CPU has AVX512-VNNI (+BW/VL).
bool available();

// Key storage: 16-key tiles of quads, [tile][D/4][16][4] bytes (dims 4j..4j+3 of a key side by side), each byte
// the key's int8 value + 128 (the unsigned side of vpdpbusd); one f32 scale per key.
inline size_t key_offset(size_t i, size_t d, size_t D) { return (i / 16) * D * 16 + (d / 4) * 64 + (i % 16) * 4 + d % 4; }

// Quantize one key row x[D] (already smoothed) into the tiles at row i; returns its scale.
float store_key(const float* x, size_t D, uint8_t* tiles, size_t i);

// Quantize M query rows q[M][D] to int8: q8[M][D], scale[M] and corr[M] = 128 * sum(q8 row).
void quantize_rows(const float* q, size_t M, size_t D, int8_t* q8, float* scale, int32_t* corr);

// out[i*ostride + 16*t + l] = q[i] . key(16*t + l) (dequantized) for M rows and `tiles` consecutive key tiles.
void tiles_scores(const int8_t* q8, const float* qscale, const int32_t* corr, size_t M, size_t D,
                  const uint8_t* tiles_begin, const float* kscale, size_t tiles, float* out, size_t ostride);

}  // namespace i8
}  // namespace cpmdesk
