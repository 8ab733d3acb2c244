// InfLLM v2 attention kernel (see infllm_v2_kernel.hpp). Per (KV head, query token): score the query heads
// of the group against the compressed keys, max-pool the kernel scores to block scores, pick the blocks
// (init + top-k + local, per variant) and run an exact softmax over the picked keys with an online softmax
// over 256-key pieces. Keys/values are f16 in memory with f32 arithmetic, or (bf16 mode, CPUs with AVX512-BF16)
// bf16 in memory with bf16 dot products accumulated in f32; block scoring and the softmax are f32 in both. In int8
// mode (bf16 mode + AVX512-VNNI, precision "auto") the sparse path scores keys with int8 QK^T (infllm_v2_int8.hpp)
// and blocks with bf16 dot products over bf16 copies of the fine compressed keys.
#include "infllm_v2_kernel.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>

#include "infllm_v2_bf16.hpp"
#include "infllm_v2_int8.hpp"

#include <openvino/core/parallel.hpp>
#include <openvino/core/type/float16.hpp>
#if defined(__AVX512F__) || defined(__AVX2__)
#    include <immintrin.h>
#endif

namespace cpmdesk {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr size_t kPiece = 256;  // keys per online-softmax piece (multiple of 16)

// ---------------------------------------------------------------- 16 float lanes
#if defined(__AVX512F__)
constexpr bool kWide = true;  // 32 vector registers: 8 query rows x 2 tiles of accumulators fit
struct V16 {
    __m512 r;
    static V16 zero() { return {_mm512_setzero_ps()}; }
    static V16 set1(float a) { return {_mm512_set1_ps(a)}; }
    static V16 load(const float* p) { return {_mm512_loadu_ps(p)}; }
    static V16 load(const uint16_t* p) {
        return {_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))};
    }
    void store(float* p) const { _mm512_storeu_ps(p, r); }
    static V16 fma(V16 a, V16 b, V16 c) { return {_mm512_fmadd_ps(a.r, b.r, c.r)}; }
    static V16 mul(V16 a, V16 b) { return {_mm512_mul_ps(a.r, b.r)}; }
    static V16 add(V16 a, V16 b) { return {_mm512_add_ps(a.r, b.r)}; }
    static V16 max(V16 a, V16 b) { return {_mm512_max_ps(a.r, b.r)}; }
    static V16 min(V16 a, V16 b) { return {_mm512_min_ps(a.r, b.r)}; }
    static V16 round(V16 a) { return {_mm512_roundscale_ps(a.r, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)}; }
    static V16 pow2(V16 p, V16 n) { return {_mm512_scalef_ps(p.r, n.r)}; }  // p * 2^n
};
static void to_f16(const float* src, uint16_t* dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) dst[i] = ov::float16(src[i]).to_bits();
}
#elif defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
constexpr bool kWide = false;  // 16 ymm registers: 4 query rows of accumulators at a time
struct V16 {
    __m256 a, b;
    static V16 zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
    static V16 set1(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
    static V16 load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
    static V16 load(const uint16_t* p) {
        return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
                _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8)))};
    }
    void store(float* p) const { _mm256_storeu_ps(p, a); _mm256_storeu_ps(p + 8, b); }
    static V16 fma(V16 x, V16 y, V16 z) { return {_mm256_fmadd_ps(x.a, y.a, z.a), _mm256_fmadd_ps(x.b, y.b, z.b)}; }
    static V16 mul(V16 x, V16 y) { return {_mm256_mul_ps(x.a, y.a), _mm256_mul_ps(x.b, y.b)}; }
    static V16 add(V16 x, V16 y) { return {_mm256_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b)}; }
    static V16 max(V16 x, V16 y) { return {_mm256_max_ps(x.a, y.a), _mm256_max_ps(x.b, y.b)}; }
    static V16 min(V16 x, V16 y) { return {_mm256_min_ps(x.a, y.a), _mm256_min_ps(x.b, y.b)}; }
    static V16 round(V16 x) {
        constexpr int m = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
        return {_mm256_round_ps(x.a, m), _mm256_round_ps(x.b, m)};
    }
    static __m256 pow2_8(__m256 p, __m256 n) {
        const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
        return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    }
    static V16 pow2(V16 p, V16 n) { return {pow2_8(p.a, n.a), pow2_8(p.b, n.b)}; }
};
static void to_f16(const float* src, uint16_t* dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) dst[i] = ov::float16(src[i]).to_bits();
}
#else
constexpr bool kWide = false;
struct V16 {
    float x[16];
    static V16 zero() { V16 r; for (auto& e : r.x) e = 0.f; return r; }
    static V16 set1(float a) { V16 r; for (auto& e : r.x) e = a; return r; }
    static V16 load(const float* p) { V16 r; std::memcpy(r.x, p, sizeof(r.x)); return r; }
    static V16 load(const uint16_t* p) {
        V16 r; for (int i = 0; i < 16; ++i) r.x[i] = float(ov::float16::from_bits(p[i])); return r;
    }
    void store(float* p) const { std::memcpy(p, x, sizeof(x)); }
    static V16 fma(V16 a, V16 b, V16 c) { for (int i = 0; i < 16; ++i) c.x[i] += a.x[i] * b.x[i]; return c; }
    static V16 mul(V16 a, V16 b) { for (int i = 0; i < 16; ++i) a.x[i] *= b.x[i]; return a; }
    static V16 add(V16 a, V16 b) { for (int i = 0; i < 16; ++i) a.x[i] += b.x[i]; return a; }
    static V16 max(V16 a, V16 b) { for (int i = 0; i < 16; ++i) a.x[i] = std::max(a.x[i], b.x[i]); return a; }
    static V16 min(V16 a, V16 b) { for (int i = 0; i < 16; ++i) a.x[i] = std::min(a.x[i], b.x[i]); return a; }
    static V16 round(V16 a) { for (auto& e : a.x) e = std::nearbyint(e); return a; }
    static V16 pow2(V16 p, V16 n) { for (int i = 0; i < 16; ++i) p.x[i] = std::ldexp(p.x[i], int(n.x[i])); return p; }
};
static void to_f16(const float* src, uint16_t* dst, size_t n) {
    for (size_t i = 0; i < n; ++i) dst[i] = ov::float16(src[i]).to_bits();
}
#endif

inline float to_f32(uint16_t b) { return float(ov::float16::from_bits(b)); }
inline float to_f32(float f) { return f; }

// e^x for 16 lanes (Cody-Waite reduction + degree-6 polynomial, ~1e-7 relative); x is clamped to [-87, 88].
inline V16 exp16(V16 x) {
    x = V16::min(V16::max(x, V16::set1(-87.f)), V16::set1(88.f));
    const V16 n = V16::round(V16::mul(x, V16::set1(1.44269504f)));
    V16 r = V16::fma(n, V16::set1(-0.693359375f), x);
    r = V16::fma(n, V16::set1(2.12194440e-4f), r);
    V16 p = V16::set1(1.f / 720.f);
    p = V16::fma(p, r, V16::set1(1.f / 120.f));
    p = V16::fma(p, r, V16::set1(1.f / 24.f));
    p = V16::fma(p, r, V16::set1(1.f / 6.f));
    p = V16::fma(p, r, V16::set1(0.5f));
    p = V16::fma(p, r, V16::set1(1.f));
    p = V16::fma(p, r, V16::set1(1.f));
    return V16::pow2(p, n);
}

// x[i] = exp(x[i] - sub) for i < n (n rounded up to 16 lanes in the buffer; lanes >= n are set to 0); returns the sum.
inline float exp_inplace(float* x, size_t n, float sub) {
    alignas(64) float tmp[16];
    V16 acc = V16::zero();
    const V16 s = V16::set1(sub);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        V16 e = exp16(V16::add(V16::load(x + i), V16::mul(s, V16::set1(-1.f))));
        e.store(x + i);
        acc = V16::add(acc, e);
    }
    float total = 0.f;
    if (i < n) {
        V16 e = exp16(V16::add(V16::load(x + i), V16::mul(s, V16::set1(-1.f))));
        e.store(tmp);
        for (size_t l = 0; l < 16; ++l) {
            if (i + l < n) total += tmp[l]; else tmp[l] = 0.f;
        }
        std::memcpy(x + i, tmp, sizeof(tmp));
    }
    acc.store(tmp);
    for (float e : tmp) total += e;
    return total;
}

// out[i][l] = sum_d q[i][d] * tile[d][l] for MH query rows and the 16 keys of one tile.
template <int MH, class KT>
inline void tile_scores_m(const float* q, size_t D, const KT* tile, float* out, size_t ostride) {
    V16 acc[MH];
    for (int i = 0; i < MH; ++i) acc[i] = V16::zero();
    for (size_t d = 0; d < D; ++d) {
        const V16 k = V16::load(tile + d * 16);
        for (int i = 0; i < MH; ++i) acc[i] = V16::fma(V16::set1(q[i * D + d]), k, acc[i]);
    }
    for (int i = 0; i < MH; ++i) acc[i].store(out + i * ostride);
}

// The same for two consecutive tiles (32 keys): one broadcast of q feeds two FMAs.
template <int MH, class KT>
inline void tile2_scores_m(const float* q, size_t D, const KT* tile, float* out, size_t ostride) {
    V16 a[MH], b[MH];
    for (int i = 0; i < MH; ++i) a[i] = b[i] = V16::zero();
    const KT* next = tile + D * 16;
    for (size_t d = 0; d < D; ++d) {
        const V16 k0 = V16::load(tile + d * 16), k1 = V16::load(next + d * 16);
        for (int i = 0; i < MH; ++i) {
            const V16 qq = V16::set1(q[i * D + d]);
            a[i] = V16::fma(qq, k0, a[i]);
            b[i] = V16::fma(qq, k1, b[i]);
        }
    }
    for (int i = 0; i < MH; ++i) {
        a[i].store(out + i * ostride);
        b[i].store(out + i * ostride + 16);
    }
}

template <class KT>
inline void tile_scores(const float* q, size_t M, size_t D, const KT* tile, float* out, size_t ostride) {
    size_t h = 0;
    if (kWide)
        for (; h + 8 <= M; h += 8) tile_scores_m<8>(q + h * D, D, tile, out + h * ostride, ostride);
    for (; h + 4 <= M; h += 4) tile_scores_m<4>(q + h * D, D, tile, out + h * ostride, ostride);
    for (; h + 2 <= M; h += 2) tile_scores_m<2>(q + h * D, D, tile, out + h * ostride, ostride);
    for (; h < M; ++h) tile_scores_m<1>(q + h * D, D, tile, out + h * ostride, ostride);
}

// Scores of M rows against `tiles` consecutive tiles starting at `tile`, written at out[i*ostride + 16*t + l].
template <class KT>
inline void tiles_scores(const float* q, size_t M, size_t D, const KT* tile, size_t tiles, float* out,
                         size_t ostride) {
    size_t t = 0;
    if (kWide)
        for (; t + 2 <= tiles; t += 2) {
            size_t h = 0;
            for (; h + 8 <= M; h += 8)
                tile2_scores_m<8>(q + h * D, D, tile + t * D * 16, out + h * ostride + t * 16, ostride);
            for (; h + 4 <= M; h += 4)
                tile2_scores_m<4>(q + h * D, D, tile + t * D * 16, out + h * ostride + t * 16, ostride);
            for (; h < M; ++h)
                tile2_scores_m<1>(q + h * D, D, tile + t * D * 16, out + h * ostride + t * 16, ostride);
        }
    for (; t < tiles; ++t) tile_scores(q, M, D, tile + t * D * 16, out + t * 16, ostride);
}

// acc[i][:] += sum_k p[i][k] * V[k][:] for MH rows over nk keys.
template <int MH>
inline void pv_m(const float* p, size_t pstride, size_t nk, const uint16_t* V, size_t D, float* acc) {
    for (size_t d0 = 0; d0 < D; d0 += 16) {
        V16 a[MH];
        for (int i = 0; i < MH; ++i) a[i] = V16::load(acc + i * D + d0);
        for (size_t k = 0; k < nk; ++k) {
            const V16 v = V16::load(V + k * D + d0);
            for (int i = 0; i < MH; ++i) a[i] = V16::fma(V16::set1(p[i * pstride + k]), v, a[i]);
        }
        for (int i = 0; i < MH; ++i) a[i].store(acc + i * D + d0);
    }
}

// Two 16-lane column chunks at a time: one broadcast of p feeds two FMAs.
template <int MH>
inline void pv2_m(const float* p, size_t pstride, size_t nk, const uint16_t* V, size_t D, float* acc) {
    for (size_t d0 = 0; d0 < D; d0 += 32) {
        V16 a[MH], b[MH];
        for (int i = 0; i < MH; ++i) {
            a[i] = V16::load(acc + i * D + d0);
            b[i] = V16::load(acc + i * D + d0 + 16);
        }
        for (size_t k = 0; k < nk; ++k) {
            const V16 v0 = V16::load(V + k * D + d0), v1 = V16::load(V + k * D + d0 + 16);
            for (int i = 0; i < MH; ++i) {
                const V16 w = V16::set1(p[i * pstride + k]);
                a[i] = V16::fma(w, v0, a[i]);
                b[i] = V16::fma(w, v1, b[i]);
            }
        }
        for (int i = 0; i < MH; ++i) {
            a[i].store(acc + i * D + d0);
            b[i].store(acc + i * D + d0 + 16);
        }
    }
}

inline void pv(const float* p, size_t M, size_t pstride, size_t nk, const uint16_t* V, size_t D, float* acc) {
    size_t h = 0;
    if (kWide && D % 32 == 0) {
        for (; h + 8 <= M; h += 8) pv2_m<8>(p + h * pstride, pstride, nk, V, D, acc + h * D);
        for (; h + 4 <= M; h += 4) pv2_m<4>(p + h * pstride, pstride, nk, V, D, acc + h * D);
        for (; h < M; ++h) pv2_m<1>(p + h * pstride, pstride, nk, V, D, acc + h * D);
        return;
    }
    for (; h + 4 <= M; h += 4) pv_m<4>(p + h * pstride, pstride, nk, V, D, acc + h * D);
    for (; h + 2 <= M; h += 2) pv_m<2>(p + h * pstride, pstride, nk, V, D, acc + h * D);
    for (; h < M; ++h) pv_m<1>(p + h * pstride, pstride, nk, V, D, acc + h * D);
}

inline size_t round16(size_t n) { return (n + 15) / 16 * 16; }

// Complete windows of `size` tokens with `stride` in the first n tokens.
inline size_t windows(size_t n, size_t size, size_t stride) { return n >= size ? (n - size) / stride + 1 : 0; }

using Range = std::pair<size_t, size_t>;

// One part's online-softmax state of M rows.
struct Partial {
    std::vector<float> m, l, acc;
};

struct Scratch {
    std::vector<float> q, s, acc, m, l, f, f2, S, P;
    std::vector<Partial> parts;   // attend(): the states of a row's parts and the ranges of one part
    std::vector<Range> part_ranges;
    std::vector<uint16_t> qb;     // bf16 mode: the prescaled query rows in bf16
    std::vector<uint16_t> pb;     // bf16 mode: the softmax weights of a piece in bf16
    std::vector<int8_t> q8;       // int8 QK^T: the prescaled query rows in int8, their scales and corrections
    std::vector<float> q8s;
    std::vector<int32_t> q8c;
    std::vector<uint64_t> cand;
    std::vector<char> keep;
    std::vector<Range> ranges;
    bool bf16 = false, int8 = false, timed = false;
    double t_score = 0, t_select = 0, t_attend = 0;  // CPU seconds of this task (when timed)
};

inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Per-run CPU-time totals of the tasks (added once per task).
struct Totals {
    std::atomic<int64_t> score{0}, select{0}, attend{0};
    void add(const Scratch& sc) {
        score += static_cast<int64_t>(sc.t_score * 1e9);
        select += static_cast<int64_t>(sc.t_select * 1e9);
        attend += static_cast<int64_t>(sc.t_attend * 1e9);
    }
};

// Online-softmax state of M prescaled query rows over the keys in `ranges` (starts are multiples of 16):
// running max sc.m, sum sc.l and unnormalised output sc.acc.
void attend_partial(const GroupState& gs, size_t M, size_t D, const std::vector<Range>& ranges, Scratch& sc) {
    sc.s.resize(M * kPiece);
    if (sc.bf16) sc.pb.resize(M * kPiece);
    sc.acc.assign(M * D, 0.f);
    sc.m.assign(M, kNegInf);
    sc.l.assign(M, 0.f);
    float* s = sc.s.data();
    for (const auto& r : ranges) {
        for (size_t a = r.first; a < r.second; a += kPiece) {
            const size_t n = std::min(kPiece, r.second - a), tiles = (n + 15) / 16;
            if (sc.int8)
                i8::tiles_scores(sc.q8.data(), sc.q8s.data(), sc.q8c.data(), M, D, gs.K8.data() + a * D,
                                 gs.K8s.data() + a, tiles, s, kPiece);
            else if (sc.bf16) bf16::tiles_scores(sc.qb.data(), M, D, gs.K.tile(a / 16), tiles, s, kPiece);
            else tiles_scores(sc.q.data(), M, D, gs.K.tile(a / 16), tiles, s, kPiece);
            for (size_t h = 0; h < M; ++h) {
                float* row = s + h * kPiece;
                for (size_t k = n; k < tiles * 16; ++k) row[k] = kNegInf;
                V16 vmx = V16::set1(kNegInf);
                for (size_t t = 0; t < tiles; ++t) vmx = V16::max(vmx, V16::load(row + t * 16));
                alignas(64) float lanes[16];
                vmx.store(lanes);
                float mx = kNegInf;
                for (float e : lanes) mx = std::max(mx, e);
                const float mnew = std::max(sc.m[h], mx);
                if (sc.m[h] != kNegInf && sc.m[h] != mnew) {
                    const float corr = std::exp(sc.m[h] - mnew);
                    sc.l[h] *= corr;
                    for (size_t d = 0; d < D; ++d) sc.acc[h * D + d] *= corr;
                }
                sc.m[h] = mnew;
                if (sc.bf16) sc.l[h] += bf16::exp_to_bf16(row, tiles * 16, mnew, sc.pb.data() + h * kPiece);
                else sc.l[h] += exp_inplace(row, n, mnew);
            }
            if (sc.bf16) {
                bf16::pv(sc.pb.data(), M, kPiece, n, gs.V.data() + a * D, D, sc.acc.data());
            } else {
                pv(s, M, kPiece, n, gs.V.data() + a * D, D, sc.acc.data());
            }
        }
    }
}

// Keys per part of a row's attention: a row's keys are cut into parts of this many (a function of its ranges
// alone), each part's softmax state computed apart and the parts merged in order. Prefill and decode both do
// exactly this, so a row's output does not depend on how many rows a step feeds or on the thread count, and a
// k-token verification step gives bit for bit what k one-token steps give (assisted decoding needs that).
constexpr size_t kPart = 1024;  // a multiple of kPiece

// Call part(ranges of one part) for each part of kPart keys of `ranges`, in order (cuts stay multiples of 16 inside
// a range); `buffer` holds the part's ranges.
template <class F>
void for_each_part(const std::vector<Range>& ranges, std::vector<Range>& buffer, F&& part) {
    buffer.clear();
    size_t filled = 0;
    for (const auto& r : ranges) {
        size_t a = r.first;
        while (a < r.second) {
            if (filled == kPart) {
                part(buffer);
                buffer.clear();
                filled = 0;
            }
            const size_t take = std::min(r.second - a, kPart - filled);
            buffer.emplace_back(a, a + take);
            a += take;
            filled += take;
        }
    }
    if (!buffer.empty()) part(buffer);
}

// out[h*out_stride + :] = the exact softmax attention of row h, merged from the parts' states (in order).
void merge_parts(const Partial* parts, size_t count, size_t M, size_t D, float* out, size_t out_stride) {
    for (size_t h = 0; h < M; ++h) {
        float mx = kNegInf, l = 0.f;
        for (size_t k = 0; k < count; ++k) mx = std::max(mx, parts[k].m[h]);
        float* o = out + h * out_stride;
        std::fill(o, o + D, 0.f);
        for (size_t k = 0; k < count; ++k) {
            if (parts[k].m[h] == kNegInf) continue;
            const float w = std::exp(parts[k].m[h] - mx);
            l += parts[k].l[h] * w;
            for (size_t d = 0; d < D; ++d) o[d] += parts[k].acc[h * D + d] * w;
        }
        const float inv = 1.f / l;
        for (size_t d = 0; d < D; ++d) o[d] *= inv;
    }
}

// Exact softmax attention of M prescaled query rows over the keys in `ranges`, part by part (see kPart).
void attend(const GroupState& gs, size_t M, size_t D, const std::vector<Range>& ranges, Scratch& sc, float* out,
            size_t out_stride) {
    size_t count = 0;
    for_each_part(ranges, sc.part_ranges, [&](const std::vector<Range>& part) {
        attend_partial(gs, M, D, part, sc);
        if (sc.parts.size() <= count) sc.parts.emplace_back();  // kept between rows: no allocation per row
        Partial& p = sc.parts[count++];
        p.m.assign(sc.m.begin(), sc.m.end());
        p.l.assign(sc.l.begin(), sc.l.end());
        p.acc.assign(sc.acc.begin(), sc.acc.end());
    });
    merge_parts(sc.parts.data(), count, M, D, out, out_stride);
}

float row_max(const float* row, size_t n) {
    V16 vmx = V16::set1(kNegInf);
    size_t k = 0;
    for (; k + 16 <= n; k += 16) vmx = V16::max(vmx, V16::load(row + k));
    alignas(64) float lanes[16];
    vmx.store(lanes);
    float mx = kNegInf;
    for (float e : lanes) mx = std::max(mx, e);
    for (; k < n; ++k) mx = std::max(mx, row[k]);
    return mx;
}

float log_sum_exp(float* row, size_t n) {  // destroys row
    const float mx = row_max(row, n);
    if (mx == kNegInf) return kNegInf;
    return mx + std::log(exp_inplace(row, n, mx));
}

// Block selection of InfLLM v2 for one (KV head, query position p) -> key ranges (spec §3.4-3.5).
void select_blocks(const InfLLMConfig& cfg, const GroupState& gs, size_t M, size_t D, size_t p, size_t N, size_t n1,
                   size_t n2, Scratch& sc) {
    const size_t ks = cfg.kernel_size, st = cfg.kernel_stride, B = cfg.block_size;
    const size_t W = cfg.window_blocks, init = cfg.init_blocks;
    const bool window_variant = cfg.variant == "minicpm4";
    const double t0 = sc.timed ? now_s() : 0.0;
    const size_t vis1 = std::min(n1, windows(p + 1, ks, st));
    sc.S.assign(n1, 0.f);
    if (vis1 > 0) {
        const size_t fs = round16(vis1);
        sc.f.resize(M * fs);
        if (sc.int8) bf16::tiles_scores(sc.qb.data(), M, D, gs.C1b.data(), fs / 16, sc.f.data(), fs);
        else tiles_scores(sc.q.data(), M, D, gs.C1.tile(0), fs / 16, sc.f.data(), fs);
        std::vector<float> lse(M, kNegInf);
        if (cfg.lse == "coarse") {
            const size_t vis2 = std::min(n2, windows(p + 1, 4 * ks, 4 * st));
            if (vis2 > 0) {
                const size_t f2s = round16(vis2);
                sc.f2.resize(M * f2s);
                tiles_scores(sc.q.data(), M, D, gs.C2.tile(0), f2s / 16, sc.f2.data(), f2s);
                for (size_t h = 0; h < M; ++h) lse[h] = log_sum_exp(sc.f2.data() + h * f2s, vis2);
            }
        } else {  // exact: exp(f - lse) = exp(f - max) / sum(exp(f - max)), one exp pass per row
            for (size_t h = 0; h < M; ++h) {
                float* row = sc.f.data() + h * fs;
                const float mx = row_max(row, vis1);
                if (mx == kNegInf) continue;
                const float inv = 1.f / exp_inplace(row, vis1, mx);
                float* S = sc.S.data();
                for (size_t j = 0; j < vis1; ++j) S[j] += row[j] * inv;
            }
        }
        for (size_t h = 0; h < M && cfg.lse == "coarse"; ++h) {
            if (lse[h] == kNegInf) continue;  // exp(f - lse) is not finite: contributes 0 (as the reference)
            float* row = sc.f.data() + h * fs;
            for (size_t j = 0; j < vis1; ++j)
                if (row[j] - lse[h] > 88.f) row[j] = kNegInf;  // would overflow: not finite -> 0
            exp_inplace(row, vis1, lse[h]);
            for (size_t j = 0; j < vis1; ++j) sc.S[j] += row[j];
        }
    }
    const double t1 = sc.timed ? now_s() : 0.0;
    const size_t nb = (N + B - 1) / B, qb = p / B, ps = B / st;
    // Only blocks that can win matter: the others have -inf (minicpm4: window and future blocks) or are future
    // blocks (minicpm4.1: value 0, dropped after the top-k). They have the highest indices and lose every tie,
    // so a top-k over the blocks below `cands` followed by the rule below picks exactly the same blocks.
    const size_t cands = std::min(nb, window_variant ? std::max(init, qb + 1 > W ? qb + 1 - W : 0) : qb + 1);
    // candidate = (block score as an order-preserving uint32) << 32 | ~block: larger is better, ties -> lower block
    auto ordered = [](float v) {
        uint32_t u;
        std::memcpy(&u, &v, 4);
        return u & 0x80000000u ? ~u : u | 0x80000000u;
    };
    sc.cand.resize(cands);
    for (size_t b = 0; b < cands; ++b) {
        float v = kNegInf;
        const size_t lo = b * ps == 0 ? 0 : b * ps - 1, hi = std::min(n1, b * ps + ps);
        for (size_t j = lo; j < hi; ++j) v = std::max(v, sc.S[j]);
        if (b < init) v = std::numeric_limits<float>::infinity();
        else if (window_variant && b + W > qb) v = kNegInf;
        else if (!window_variant && b + W >= qb && b <= qb) v = std::numeric_limits<float>::infinity();
        sc.cand[b] = static_cast<uint64_t>(ordered(v)) << 32 | (0xffffffffu - static_cast<uint32_t>(b));
    }
    const size_t ksel = std::min(cands, static_cast<size_t>(window_variant ? cfg.topk : cfg.topk + cfg.window_blocks));
    if (ksel < cands) std::nth_element(sc.cand.begin(), sc.cand.begin() + ksel, sc.cand.end(), std::greater<>());
    sc.keep.assign(qb + 1, 0);
    for (size_t i = 0; i < ksel; ++i) {
        const size_t b = 0xffffffffu - static_cast<uint32_t>(sc.cand[i]);
        if (window_variant ? b < qb : b <= qb) sc.keep[b] = 1;
    }
    if (window_variant)
        for (size_t b = qb + 1 > W ? qb + 1 - W : 0; b <= qb; ++b) sc.keep[b] = 1;
    sc.ranges.clear();
    for (size_t b = 0; b <= qb; ++b) {
        if (!sc.keep[b]) continue;
        const size_t lo = b * B, hi = std::min(b * B + B, p + 1);
        if (!sc.ranges.empty() && sc.ranges.back().second == lo) sc.ranges.back().second = hi;
        else sc.ranges.emplace_back(lo, hi);
    }
    if (sc.timed) {
        const double t2 = now_s();
        sc.t_score += t1 - t0;
        sc.t_select += t2 - t1;
    }
}

}  // namespace

template <class T>
void TiledKeys<T>::reserve(size_t rows) {
    const size_t need = (rows + 15) / 16;
    if (need <= cap_tiles) return;
    cap_tiles = std::max<size_t>(need, 64);  // the caller asks for its capacity plus headroom
    data.resize(cap_tiles * D * 16);  // tile-major: existing tiles keep their place
}

template <class T>
void TiledKeys<T>::set_row(size_t i, const T* row) {
    T* t = tile(i / 16);
    for (size_t d = 0; d < D; ++d) t[d * 16 + i % 16] = row[d];
}

template <class T>
void TiledKeys<T>::get_row(size_t i, float* out) const {
    const T* t = tile(i / 16);
    for (size_t d = 0; d < D; ++d) out[d] = to_f32(t[d * 16 + i % 16]);
}

template struct TiledKeys<uint16_t>;
template struct TiledKeys<float>;

const char* LayerState::profile_path() {
    static const char* path = [] {
        const char* p = std::getenv("CPMDESK_INFLLM_PROFILE");
        return p && *p ? p : nullptr;
    }();
    return path;
}

void LayerState::reset(size_t Hk, size_t D, bool bf16, bool int8) {
    groups_.assign(Hk, GroupState{});
    bf16_ = bf16;
    int8_ = int8;
    for (auto& g : groups_) g.K.D = g.C1.D = g.C2.D = D;
    Hk_ = Hk;
    D_ = D;
    len_ = cap_ = n1_ = n2_ = 0;
}

void LayerState::truncate(size_t p0, const InfLLMConfig& cfg) {
    len_ = p0;  // rows past p0 are overwritten by the next append; compressed rows of complete windows stay valid
    n1_ = windows(p0, cfg.kernel_size, cfg.kernel_stride);
    n2_ = windows(p0, 4 * cfg.kernel_size, 4 * cfg.kernel_stride);
}

void LayerState::append(const InfLLMConfig& cfg, size_t T, const float* k, const float* v) {
    const size_t N = len_ + T, D = D_;
    const size_t ks = cfg.kernel_size, st = cfg.kernel_stride;
    const size_t n1 = windows(N, ks, st), n2 = windows(N, 4 * ks, 4 * st);
    // grow by a quarter plus 1024 tokens of headroom (not 2x: at 64K tokens the KV of all layers is ~0.8 GB)
    if (N > cap_) cap_ = (std::max(N, cap_ + cap_ / 4) + 1024 + 1023) / 1024 * 1024;
    ov::parallel_for(Hk_, [&](size_t g) {
        GroupState& gs = groups_[g];
        gs.K.reserve(cap_);
        gs.V.resize(round16(cap_) * D);
        gs.C1.reserve(windows(cap_, ks, st) + 1);
        gs.C2.reserve(windows(cap_, 4 * ks, 4 * st) + 1);
        if (int8_) {  // tile-major: existing tiles keep their place
            gs.C1b.resize(gs.C1.cap_tiles * 16 * D);
            gs.K8.resize(round16(cap_) * D);
            gs.K8s.resize(round16(cap_), 0.f);
            if (len_ == 0) {  // the smoothing mean: of this first chunk's keys (at most 4096)
                const size_t n = std::min<size_t>(T, 4096);
                gs.mean.assign(D, 0.f);
                for (size_t t = 0; t < n; ++t)
                    for (size_t d = 0; d < D; ++d) gs.mean[d] += k[(g * T + t) * D + d];
                for (size_t d = 0; d < D; ++d) gs.mean[d] /= static_cast<float>(n);
            }
        }
        std::vector<uint16_t> row(D);
        std::vector<float> smooth(D);
        for (size_t t = 0; t < T; ++t) {
            const size_t i = len_ + t;
            const float* kr = k + (g * T + t) * D;
            const float* vr = v + (g * T + t) * D;
            if (bf16_) {  // pair tiles for K, key pairs interleaved for V (see infllm_v2_bf16.hpp)
                bf16::store_row(kr, D, gs.K.tile(0), i);
                uint16_t* vp = gs.V.data() + (i / 2) * D * 2 + i % 2;
                for (size_t d = 0; d < D; ++d) vp[d * 2] = bf16::from_f32(vr[d]);
            } else {
                to_f16(kr, row.data(), D);
                gs.K.set_row(i, row.data());
                to_f16(vr, gs.V.data() + i * D, D);
            }
            if (int8_) {
                for (size_t d = 0; d < D; ++d) smooth[d] = kr[d] - gs.mean[d];
                gs.K8s[i] = i8::store_key(smooth.data(), D, gs.K8.data(), i);
            }
        }
        std::vector<float> sum(D), r(D);
        auto key_row = [&](size_t i, float* out) {
            if (!bf16_) return gs.K.get_row(i, out);
            const uint16_t* kt = gs.K.tile(0);
            for (size_t d = 0; d < D; ++d) out[d] = bf16::to_f32(kt[bf16::pair_offset(i, d, D)]);
        };
        // rows from..to of C (and of its bf16 pair-tile copy, when given) as means of `size` keys every `stride`
        auto pool = [&](TiledKeys<float>& C, uint16_t* bf16_copy, size_t from, size_t to, size_t size, size_t stride) {
            for (size_t j = from; j < to; ++j) {
                std::fill(sum.begin(), sum.end(), 0.f);
                for (size_t i = j * stride; i < j * stride + size; ++i) {
                    key_row(i, r.data());
                    for (size_t d = 0; d < D; ++d) sum[d] += r[d];
                }
                for (size_t d = 0; d < D; ++d) sum[d] /= static_cast<float>(size);
                C.set_row(j, sum.data());
                if (bf16_copy) bf16::store_row(sum.data(), D, bf16_copy, j);
            }
        };
        pool(gs.C1, int8_ ? gs.C1b.data() : nullptr, n1_, n1, ks, st);
        pool(gs.C2, nullptr, n2_, n2, 4 * ks, 4 * st);
    });
    len_ = N;
    n1_ = n1;
    n2_ = n2;
}

void LayerState::run(const InfLLMConfig& cfg, size_t Hq, size_t Hk, size_t T, size_t D, size_t p0, const float* q,
                     const float* k, const float* v, float* out) {
    if (D % 16 != 0 || Hk == 0 || Hq % Hk != 0) throw std::runtime_error("InfLLMv2Attention: head_dim must be a "
                                                                           "multiple of 16 and Hq a multiple of Hk");
    static const bool cpu_bf16 = bf16::available();
    static const bool cpu_int8 = i8::available();
    static const std::string env_cap = [] {
        const char* e = std::getenv("CPMDESK_INFLLM_PRECISION");
        return std::string(e ? e : "");
    }();
    const bool bf16 = cpu_bf16 && env_cap != "f32" && cfg.precision != "f32" && D % 2 == 0;
    const bool int8 = bf16 && cpu_int8 && env_cap != "bf16" && cfg.precision == "auto" && D % 4 == 0;
    if (Hk != Hk_ || D != D_ || bf16 != bf16_ || int8 != int8_) reset(Hk, D, bf16, int8);
    const bool timed = profile_path() != nullptr;
    const double w0 = timed ? now_s() : 0.0;
    if (p0 == 0) len_ = n1_ = n2_ = 0;
    if (p0 > len_)
        throw std::runtime_error("InfLLMv2Attention: position " + std::to_string(p0) + " but only " +
                                 std::to_string(len_) + " tokens are cached (positions must continue the sequence)");
    if (p0 < len_) truncate(p0, cfg);
    append(cfg, T, k, v);
    const double w1 = timed ? now_s() : 0.0;
    const size_t N = len_, G = Hq / Hk;
    const bool dense = cfg.dense_len > 0 && N < static_cast<size_t>(cfg.dense_len);
    const float scale = cfg.scale > 0.f ? cfg.scale : 1.f / std::sqrt(static_cast<float>(D));
    const size_t threads = static_cast<size_t>(std::max(1, parallel_get_max_threads()));
    const size_t n1 = n1_, n2 = n2_;
    auto load_q = [&](Scratch& sc, size_t g, size_t t) {
        sc.bf16 = bf16_;
        sc.timed = timed;
        sc.q.resize(G * D);
        for (size_t i = 0; i < G; ++i) {
            const float* src = q + ((g * G + i) * T + t) * D;
            for (size_t d = 0; d < D; ++d) sc.q[i * D + d] = src[d] * scale;
        }
        if (bf16_) {
            sc.qb.resize(G * D);
            for (size_t i = 0; i < G * D; ++i) sc.qb[i] = bf16::from_f32(sc.q[i]);
        }
        sc.int8 = int8_ && !dense;
        if (sc.int8) {
            sc.q8.resize(G * D);
            sc.q8s.resize(G);
            sc.q8c.resize(G);
            i8::quantize_rows(sc.q.data(), G, D, sc.q8.data(), sc.q8s.data(), sc.q8c.data());
        }
    };
    Totals totals;
    auto finish = [&]() {
        if (!timed) return;
        prof_ = RunProfile{};
        prof_.wall = now_s() - w0;
        prof_.append = w1 - w0;
        prof_.score = totals.score * 1e-9;
        prof_.select = totals.select * 1e-9;
        prof_.attend = totals.attend * 1e-9;
        prof_.T = T;
        prof_.N = N;
        prof_.bf16 = bf16_;
        prof_.int8 = int8_ && !dense;
        prof_.dense = dense;
    };
    auto pick = [&](Scratch& sc, size_t g, size_t p) {
        if (dense) sc.ranges.assign(1, Range{0, p + 1});
        else select_blocks(cfg, groups_[g], G, D, p, N, n1, n2, sc);
    };
    if (T * Hk >= 4 * threads) {  // prefill: one task per (KV head, chunk of query tokens)
        const size_t chunk = std::max<size_t>(1, std::min<size_t>(16, T / (threads * 8)));
        const size_t chunks = (T + chunk - 1) / chunk;
        ov::parallel_for2d(Hk, chunks, [&](size_t g, size_t c) {
            Scratch sc;
            for (size_t t = c * chunk; t < std::min(T, (c + 1) * chunk); ++t) {
                load_q(sc, g, t);
                pick(sc, g, p0 + t);
                const double a0 = timed ? now_s() : 0.0;
                attend(groups_[g], G, D, sc.ranges, sc, out + ((g * G) * T + t) * D, T * D);
                if (timed) sc.t_attend += now_s() - a0;
            }
            if (timed) totals.add(sc);
        });
        finish();
        return;
    }
    // decode: select per (KV head, token), then spread the parts of the picked keys (kPart each) over all threads
    // and merge their softmax states, so every core works even with 2 KV heads
    std::vector<std::vector<Range>> picked(Hk * T);
    ov::parallel_for2d(Hk, T, [&](size_t g, size_t t) {
        Scratch sc;
        load_q(sc, g, t);
        pick(sc, g, p0 + t);
        picked[g * T + t] = sc.ranges;
        if (timed) totals.add(sc);
    });
    struct Item {
        size_t g, t;
        std::vector<Range> ranges;
        Partial state;
    };
    std::vector<Item> items;
    std::vector<Range> part;
    for (size_t g = 0; g < Hk; ++g)
        for (size_t t = 0; t < T; ++t)
            for_each_part(picked[g * T + t], part,
                          [&](const std::vector<Range>& r) { items.push_back({g, t, r, {}}); });
    ov::parallel_for(items.size(), [&](size_t i) {
        Item& it = items[i];
        Scratch sc;
        load_q(sc, it.g, it.t);
        const double a0 = timed ? now_s() : 0.0;
        attend_partial(groups_[it.g], G, D, it.ranges, sc);
        if (timed) {
            sc.t_attend += now_s() - a0;
            totals.add(sc);
        }
        it.state = {std::move(sc.m), std::move(sc.l), std::move(sc.acc)};
    });
    std::vector<Partial> parts;
    size_t i = 0;
    for (size_t g = 0; g < Hk; ++g)
        for (size_t t = 0; t < T; ++t) {
            parts.clear();
            for (; i < items.size() && items[i].g == g && items[i].t == t; ++i)
                parts.push_back(std::move(items[i].state));
            merge_parts(parts.data(), parts.size(), G, D, out + ((g * G) * T + t) * D, T * D);
        }
    finish();
}

}  // namespace cpmdesk
