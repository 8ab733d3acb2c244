// bf16 dot-product kernels (see infllm_v2_bf16.hpp). Every function that uses AVX-512 carries its own target
// attribute: the rest of the library keeps the -march it was built with and loads on any x86-64 CPU.
#include "infllm_v2_bf16.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#    define CPMDESK_BF16 1
#    include <immintrin.h>
#    define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#else
#    define CPMDESK_BF16 0
#endif

namespace cpmdesk {
namespace bf16 {

uint16_t from_f32(float x) {
    uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}

#if CPMDESK_BF16

bool available() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

namespace {

BF16_TARGET inline __m512bh load_bh(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
BF16_TARGET inline __m512bh pair_bh(uint32_t pair) { return (__m512bh)_mm512_set1_epi32(static_cast<int>(pair)); }

// MH query rows x NT tiles of 16 keys: one load of a pair row of a tile feeds MH dot products.
template <int MH, int NT>
BF16_TARGET inline void qk_block(const uint32_t* q, size_t Dp, const uint16_t* tile, float* out, size_t ostride) {
    __m512 acc[MH][NT];
    for (int i = 0; i < MH; ++i)
        for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_setzero_ps();
    for (size_t j = 0; j < Dp; ++j) {
        __m512bh k[NT];
        for (int t = 0; t < NT; ++t) k[t] = load_bh(tile + t * Dp * 32 + j * 32);
        for (int i = 0; i < MH; ++i) {
            const __m512bh qq = pair_bh(q[i * Dp + j]);
            for (int t = 0; t < NT; ++t) acc[i][t] = _mm512_dpbf16_ps(acc[i][t], qq, k[t]);
        }
    }
    for (int i = 0; i < MH; ++i)
        for (int t = 0; t < NT; ++t) _mm512_storeu_ps(out + i * ostride + 16 * t, acc[i][t]);
}

template <int NT>
BF16_TARGET inline void qk_rows(const uint32_t* q, size_t M, size_t Dp, const uint16_t* tile, float* out,
                                size_t ostride) {
    size_t h = 0;
    for (; h + 8 <= M; h += 8) qk_block<8, NT>(q + h * Dp, Dp, tile, out + h * ostride, ostride);
    for (; h + 4 <= M; h += 4) qk_block<4, NT>(q + h * Dp, Dp, tile, out + h * ostride, ostride);
    for (; h < M; ++h) qk_block<1, NT>(q + h * Dp, Dp, tile, out + h * ostride, ostride);
}

// MH rows x NC chunks of 16 output dims, over nkp key pairs.
template <int MH, int NC>
BF16_TARGET inline void pv_block(const uint32_t* pp, size_t ppstride, size_t nkp, const uint16_t* V, size_t D,
                                 float* acc) {
    for (size_t d0 = 0; d0 < D; d0 += 16 * NC) {
        __m512 a[MH][NC];
        for (int i = 0; i < MH; ++i)
            for (int c = 0; c < NC; ++c) a[i][c] = _mm512_loadu_ps(acc + i * D + d0 + 16 * c);
        for (size_t kp = 0; kp < nkp; ++kp) {
            __m512bh v[NC];
            for (int c = 0; c < NC; ++c) v[c] = load_bh(V + kp * D * 2 + (d0 + 16 * c) * 2);
            for (int i = 0; i < MH; ++i) {
                const __m512bh w = pair_bh(pp[i * ppstride + kp]);
                for (int c = 0; c < NC; ++c) a[i][c] = _mm512_dpbf16_ps(a[i][c], w, v[c]);
            }
        }
        for (int i = 0; i < MH; ++i)
            for (int c = 0; c < NC; ++c) _mm512_storeu_ps(acc + i * D + d0 + 16 * c, a[i][c]);
    }
}

template <int NC>
BF16_TARGET inline void pv_rows(const uint32_t* pp, size_t M, size_t ppstride, size_t nkp, const uint16_t* V,
                                size_t D, float* acc) {
    size_t h = 0;
    for (; h + 8 <= M; h += 8) pv_block<8, NC>(pp + h * ppstride, ppstride, nkp, V, D, acc + h * D);
    for (; h + 4 <= M; h += 4) pv_block<4, NC>(pp + h * ppstride, ppstride, nkp, V, D, acc + h * D);
    for (; h < M; ++h) pv_block<1, NC>(pp + h * ppstride, ppstride, nkp, V, D, acc + h * D);
}

}  // namespace

BF16_TARGET void tiles_scores(const uint16_t* q, size_t M, size_t D, const uint16_t* tiles_begin, size_t tiles,
                              float* out, size_t ostride) {
    const uint32_t* qp = reinterpret_cast<const uint32_t*>(q);
    const size_t Dp = D / 2;
    size_t t = 0;
    for (; t + 2 <= tiles; t += 2) qk_rows<2>(qp, M, Dp, tiles_begin + t * D * 16, out + t * 16, ostride);
    for (; t < tiles; ++t) qk_rows<1>(qp, M, Dp, tiles_begin + t * D * 16, out + t * 16, ostride);
}

BF16_TARGET float exp_to_bf16(const float* x, size_t n16, float m, uint16_t* out) {
    // e^(x-m) = 2^t with t = (x-m)*log2(e) = n + f, |f| <= 1/2: 2^f by a cubic (relative error 1.4e-4, far below the
    // bf16 rounding of the result), times 2^n; t >= -150 gives 0 in f32 (and x = -inf too)
    const __m512 l2e = _mm512_set1_ps(1.44269504f), ml = _mm512_set1_ps(m * 1.44269504f), lo = _mm512_set1_ps(-150.f);
    const __m512 c0 = _mm512_set1_ps(0.99995134f), c1 = _mm512_set1_ps(0.69325305f),
                 c2 = _mm512_set1_ps(0.24225698f), c3 = _mm512_set1_ps(0.05502927f);
    __m512 sum = _mm512_setzero_ps();
    for (size_t k = 0; k < n16; k += 16) {
        const __m512 t = _mm512_max_ps(_mm512_fmsub_ps(_mm512_loadu_ps(x + k), l2e, ml), lo);
        const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512 f = _mm512_sub_ps(t, n);
        const __m512 p = _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_fmadd_ps(c3, f, c2), f, c1), f, c0);
        const __m512 e = _mm512_scalef_ps(p, n);
        sum = _mm512_add_ps(sum, e);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), (__m256i)_mm512_cvtneps_pbh(e));
    }
    return _mm512_reduce_add_ps(sum);
}

BF16_TARGET void pv(const uint16_t* p, size_t M, size_t pstride, size_t nk, const uint16_t* V, size_t D,
                    float* acc) {
    // word 2k+e of a bf16 row is p[2k+e], so key pair k is one uint32
    const uint32_t* pp = reinterpret_cast<const uint32_t*>(p);
    const size_t nkp = (nk + 1) / 2, ppstride = pstride / 2;
    if (D % 32 == 0) pv_rows<2>(pp, M, ppstride, nkp, V, D, acc);
    else pv_rows<1>(pp, M, ppstride, nkp, V, D, acc);
}

#else  // no bf16 kernels in this build

bool available() { return false; }
void tiles_scores(const uint16_t*, size_t, size_t, const uint16_t*, size_t, float*, size_t) {}
float exp_to_bf16(const float*, size_t, float, uint16_t*) { return 0.f; }
void pv(const uint16_t*, size_t, size_t, size_t, const uint16_t*, size_t, float*) {}

#endif

}  // namespace bf16
}  // namespace cpmdesk
