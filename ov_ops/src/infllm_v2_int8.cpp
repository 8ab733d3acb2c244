// int8 QK^T kernel (see infllm_v2_int8.hpp). Every function that uses AVX-512 carries its own target attribute.
#include "infllm_v2_int8.hpp"

#include <cmath>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#    define CPMDESK_I8 1
#    include <immintrin.h>
#    define I8_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#else
#    define CPMDESK_I8 0
#endif

namespace cpmdesk {
namespace i8 {

namespace {
inline int round_clamp(float x) {
    const int v = static_cast<int>(std::lrint(x));
    return v > 127 ? 127 : (v < -127 ? -127 : v);
}

// The symmetric int8 scale of row x[D]: max |x| / 127 (1 for an all-zero row).
inline float row_scale(const float* x, size_t D) {
    float mx = 0.f;
    for (size_t d = 0; d < D; ++d) mx = std::fmax(mx, std::fabs(x[d]));
    return mx > 0.f ? mx / 127.f : 1.f;
}
}  // namespace

float store_key(const float* x, size_t D, uint8_t* tiles, size_t i) {
    const float scale = row_scale(x, D), inv = 1.f / scale;
    for (size_t d = 0; d < D; ++d) tiles[key_offset(i, d, D)] = static_cast<uint8_t>(round_clamp(x[d] * inv) + 128);
    return scale;
}

namespace {
void quantize_rows_scalar(const float* q, size_t M, size_t D, int8_t* q8, float* scale, int32_t* corr) {
    for (size_t h = 0; h < M; ++h) {
        const float* row = q + h * D;
        scale[h] = row_scale(row, D);
        const float inv = 1.f / scale[h];
        int32_t sum = 0;
        for (size_t d = 0; d < D; ++d) {
            const int v = round_clamp(row[d] * inv);
            q8[h * D + d] = static_cast<int8_t>(v);
            sum += v;
        }
        corr[h] = 128 * sum;
    }
}
}  // namespace

#if CPMDESK_I8

bool available() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

namespace {

// MH query rows x NT tiles of 16 keys: one load of a quad row of a tile feeds MH dot products.
template <int MH, int NT>
I8_TARGET inline void qk_block(const int32_t* q, size_t Dq, const float* qscale, const int32_t* corr,
                               const uint8_t* tile, const float* kscale, float* out, size_t ostride) {
    __m512i acc[MH][NT];
    for (int i = 0; i < MH; ++i)
        for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_setzero_si512();
    for (size_t j = 0; j < Dq; ++j) {
        __m512i k[NT];
        for (int t = 0; t < NT; ++t) k[t] = _mm512_loadu_si512(tile + t * Dq * 64 + j * 64);
        for (int i = 0; i < MH; ++i) {
            const __m512i qq = _mm512_set1_epi32(q[i * Dq + j]);
            for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_dpbusd_epi32(acc[i][t], k[t], qq);
        }
    }
    __m512 ks[NT];
    for (int t = 0; t < NT; ++t) ks[t] = _mm512_loadu_ps(kscale + 16 * t);
    for (int i = 0; i < MH; ++i) {
        const __m512i c = _mm512_set1_epi32(corr[i]);
        const __m512 qs = _mm512_set1_ps(qscale[i]);
        for (int t = 0; t < NT; ++t)
            _mm512_storeu_ps(out + i * ostride + 16 * t,
                             _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][t], c)), ks[t]), qs));
    }
}

template <int NT>
I8_TARGET inline void qk_rows(const int32_t* q, size_t M, size_t Dq, const float* qscale, const int32_t* corr,
                              const uint8_t* tile, const float* kscale, float* out, size_t ostride) {
    size_t h = 0;
    for (; h + 8 <= M; h += 8)
        qk_block<8, NT>(q + h * Dq, Dq, qscale + h, corr + h, tile, kscale, out + h * ostride, ostride);
    for (; h + 4 <= M; h += 4)
        qk_block<4, NT>(q + h * Dq, Dq, qscale + h, corr + h, tile, kscale, out + h * ostride, ostride);
    for (; h < M; ++h) qk_block<1, NT>(q + h * Dq, Dq, qscale + h, corr + h, tile, kscale, out + h * ostride, ostride);
}

// 16 dims at a time; rounding to nearest even as lrint in the scalar version.
I8_TARGET void quantize_rows_avx512(const float* q, size_t M, size_t D, int8_t* q8, float* scale, int32_t* corr) {
    for (size_t h = 0; h < M; ++h) {
        const float* row = q + h * D;
        __m512 mx = _mm512_setzero_ps();
        for (size_t d = 0; d < D; d += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(row + d)));
        const float m = _mm512_reduce_max_ps(mx);
        scale[h] = m > 0.f ? m / 127.f : 1.f;
        const __m512 inv = _mm512_set1_ps(1.f / scale[h]);
        const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
        __m512i sum = _mm512_setzero_si512();
        for (size_t d = 0; d < D; d += 16) {
            __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(row + d), inv));
            v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
            sum = _mm512_add_epi32(sum, v);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(q8 + h * D + d), _mm512_cvtsepi32_epi8(v));
        }
        corr[h] = 128 * _mm512_reduce_add_epi32(sum);
    }
}

}  // namespace

void quantize_rows(const float* q, size_t M, size_t D, int8_t* q8, float* scale, int32_t* corr) {
    if (D % 16 == 0) quantize_rows_avx512(q, M, D, q8, scale, corr);
    else quantize_rows_scalar(q, M, D, q8, scale, corr);
}

I8_TARGET void tiles_scores(const int8_t* q8, const float* qscale, const int32_t* corr, size_t M, size_t D,
                            const uint8_t* tiles_begin, const float* kscale, size_t tiles, float* out, size_t ostride) {
    const int32_t* q = reinterpret_cast<const int32_t*>(q8);  // 4 dims of a row per int32
    const size_t Dq = D / 4;
    size_t t = 0;
    for (; t + 2 <= tiles; t += 2)
        qk_rows<2>(q, M, Dq, qscale, corr, tiles_begin + t * D * 16, kscale + t * 16, out + t * 16, ostride);
    for (; t < tiles; ++t)
        qk_rows<1>(q, M, Dq, qscale, corr, tiles_begin + t * D * 16, kscale + t * 16, out + t * 16, ostride);
}

#else  // no int8 kernel in this build

bool available() { return false; }
void quantize_rows(const float* q, size_t M, size_t D, int8_t* q8, float* scale, int32_t* corr) {
    quantize_rows_scalar(q, M, D, q8, scale, corr);
}
void tiles_scores(const int8_t*, const float*, const int32_t*, size_t, size_t, const uint8_t*, const float*, size_t,
                  float*, size_t) {}

#endif

}  // namespace i8
}  // namespace cpmdesk
