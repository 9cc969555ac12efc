// LeNet-5's two conv stages, each in one pass: a k x k convolution, 2 x 2 / 2 max-pooling and
// ReLU, forward and backward, on the CPU in float32. Why they exist: with 6 and 16 channels
// ATen's channels_last max-pool cannot fill a vector register and its convolution kernels are
// built for many channels; the first stage alone took 60-70% of a LeNet-5 training step
// (docs/training.md). Here every inner loop runs over contiguous memory and vectorises, and
// the multiply-adds keep several independent accumulators in vector registers.
//
// The first stage (forward, backward: 1 input channel). The trick: each image is split into its even and odd columns (xe, xo). The convolution at
// the even output columns 2u then reads xe and xo at columns u + m, and at the odd ones too, so
// both "phases" are plain contiguous multiply-adds, and a pooling window's four values sit at
// the same index of four arrays (even/odd phase x top/bottom row): no strided access anywhere.
//
// Layouts: x (N, H, W) contiguous, W even; weight (C, k, k); bias (C); out and grad_out
// (N, H2, W2, C) -- the memory of a channels_last (N, C, H2, W2) tensor; argmax (N, H2, W2, C)
// uint8 in 0..3, the window position (row-major) of the first maximum, as ATen's max-pool
// picks it; an output that ReLU clipped to 0 passes no gradient, as ReLU's backward gives.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

namespace {

// B floats make one vector register (AVX-512: 16; otherwise 8). The loops below keep several
// independent accumulators in registers: a single chain of multiply-adds waits on each one's
// latency (4 cycles) and would run at an eighth of the machine's rate.
#ifdef __AVX512F__
constexpr int64_t B = 16;
#else
constexpr int64_t B = 8;
#endif
constexpr int64_t G = 4;  // first stage, forward: blocks of B positions per phase together
constexpr int R = 8;       // taps (first stage, backward) or positions (second stage, forward)
                           // whose sums accumulate together

struct Shape {
  int64_t N, H, W, C, k, S, H1, H2, W2, run, run_pad;
  Shape(const at::Tensor& x, int64_t C_, int64_t k_)
      : N(x.size(0)), H(x.size(1)), W(x.size(2)), C(C_), k(k_), S(W / 2), H1(H - k + 1),
        H2(H1 / 2), W2((W - k + 1) / 2), run(H1 * S),
        run_pad((H1 * S + G * B - 1) / (G * B) * (G * B)) {}
  // the split image, long enough that a loop over run_pad positions from any tap stays inside
  int64_t padded() const { return H * S + k * S + G * B; }
};

// n floats, zeroed, starting at a multiple of 64 bytes
struct Aligned {
  std::vector<float> buf;
  float* data;
  explicit Aligned(int64_t n)
      : buf(n + 16, 0.f),
        data(buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) / 4 % 16) % 16) {}
};

// An image's even and odd columns, each also shifted left by 1 .. k/2 elements, so that every
// tap's reads start at a multiple of 64 bytes when a row does (W = 32: S = 16 floats): a
// vector load that straddles two cache lines costs two.
struct Columns {
  int64_t S, len, shifts;
  Aligned buf;
  explicit Columns(const Shape& s)
      : S(s.S), len((s.padded() + 15) / 16 * 16), shifts(s.k / 2 + 1), buf(2 * shifts * len) {}
  float* at(int parity, int64_t shift) { return buf.data + (parity * shifts + shift) * len; }
  // even[r * S + u] = x[r][2u], odd[r * S + u] = x[r][2u + 1]; shifted copies after them
  void split(const float* __restrict__ x, int64_t rows) {
    float* __restrict__ xe = at(0, 0);
    float* __restrict__ xo = at(1, 0);
    for (int64_t p = 0; p < rows * S; ++p) {
      xe[p] = x[2 * p];
      xo[p] = x[2 * p + 1];
    }
    for (int parity = 0; parity < 2; ++parity)
      for (int64_t m = 1; m < shifts; ++m)
        std::copy(at(parity, 0) + m, at(parity, 0) + rows * S, at(parity, m));
  }
  // where tap (i, j) of output phase `odd` reads (see the file's comment)
  const float* tap(int64_t i, int64_t j, bool odd) {
    const int64_t m = j / 2;
    if (!odd) return at(j % 2, m) + i * S;
    return j % 2 ? at(0, m + 1) + i * S : at(1, m) + i * S;
  }
};

// GCC/Clang vector types: B floats, loaded and stored unaligned
typedef float vec __attribute__((vector_size(B * sizeof(float))));
typedef float vec_unaligned __attribute__((vector_size(B * sizeof(float)), aligned(4)));
inline vec load(const float* p) { return *reinterpret_cast<const vec_unaligned*>(p); }
inline void store(float* p, vec v) { *reinterpret_cast<vec_unaligned*>(p) = v; }

// one channel's convolution at both phases: out[odd * run_pad + p] for p < run_pad;
// 2 phases x G blocks = 8 independent accumulators per tap
void conv_channel(const float* const* src_even, const float* const* src_odd,
                  const float* __restrict__ w, float bias, int64_t taps, int64_t run_pad,
                  float* __restrict__ out) {
  for (int64_t p0 = 0; p0 < run_pad; p0 += G * B) {
    vec even[G], odd[G];
    for (int g = 0; g < G; ++g) even[g] = odd[g] = vec{} + bias;
    for (int64_t t = 0; t < taps; ++t) {
      const vec wv = vec{} + w[t];
      const float* a = src_even[t] + p0;
      const float* b = src_odd[t] + p0;
      for (int g = 0; g < G; ++g) {
        even[g] += wv * load(a + g * B);
        odd[g] += wv * load(b + g * B);
      }
    }
    for (int g = 0; g < G; ++g) {
      store(out + p0 + g * B, even[g]);
      store(out + run_pad + p0 + g * B, odd[g]);
    }
  }
}

// The gradient sums of a backward pass: each thread keeps a float64 row of them and adds its
// float partial sums into it every few images (float sums over a whole batch would drift);
// the rows are added once the parallel loop is done.
class GradSums {
 public:
  explicit GradSums(int64_t count)
      : count_(count), rows_(at::get_num_threads() * count, 0.0) {}
  double* row() { return rows_.data() + at::get_thread_num() * count_; }  // this thread's
  // adds the first n sums, sum i held as `lanes` float partial sums at partial[i * lanes ...],
  // and zeroes the partial sums
  void add(float* partial, int64_t n, int64_t lanes) {
    double* r = row();
    for (int64_t i = 0; i < n; ++i) {
      double total = 0.0;
      for (int64_t v = 0; v < lanes; ++v) total += partial[i * lanes + v];
      r[i] += total;
    }
    std::fill(partial, partial + n * lanes, 0.f);
  }
  at::Tensor total() const {  // float32, after the parallel loop
    auto sums = at::zeros({count_}, at::kDouble);
    double* t = sums.data_ptr<double>();
    for (size_t r = 0; r < rows_.size(); r += count_)
      for (int64_t i = 0; i < count_; ++i) t[i] += rows_[r + i];
    return sums.to(at::kFloat);
  }

 private:
  int64_t count_;
  std::vector<double> rows_;
};

// grad[q] (B lanes) += sum over p < run_pad of d[p] * src[q][p], Q taps at once (Q
// independent accumulators); the lanes are added up once, at the end of a batch of images
template <int Q>
void tap_grads(const float* __restrict__ d, const float* const* src, int64_t run_pad,
               float* __restrict__ grad) {
  vec acc[Q] = {};
  for (int64_t p0 = 0; p0 < run_pad; p0 += B) {
    const vec dv = load(d + p0);
    for (int q = 0; q < Q; ++q) acc[q] += dv * load(src[q] + p0);
  }
  for (int q = 0; q < Q; ++q) store(grad + q * B, load(grad + q * B) + acc[q]);
}

// run F<q> for q = n (1..R): the remainder of a loop in blocks of R
#define DISPATCH(F, n, ...)                       \
  switch (n) {                                    \
    case 1: F<1>(__VA_ARGS__); break;             \
    case 2: F<2>(__VA_ARGS__); break;             \
    case 3: F<3>(__VA_ARGS__); break;             \
    case 4: F<4>(__VA_ARGS__); break;             \
    case 5: F<5>(__VA_ARGS__); break;             \
    case 6: F<6>(__VA_ARGS__); break;             \
    case 7: F<7>(__VA_ARGS__); break;             \
    default: F<R>(__VA_ARGS__);                   \
  }

// ---- the second stage: a C_in-channel k x k convolution of an NHWC image, 2x2 max-pool, ReLU
// Vectors run over the output channels (C_out a multiple of B: LeNet-5's 16 is one AVX-512
// register), so one tap's weights for one input channel are one vector load and every input
// value is a broadcast; R output positions keep R accumulators in registers.

struct Shape2 {
  int64_t N, H, W, Ci, Co, k, H1, W1, H2, W2, K, P1;
  Shape2(const at::Tensor& x, const at::Tensor& weight)
      : N(x.size(0)), H(x.size(1)), W(x.size(2)), Ci(x.size(3)), Co(weight.size(0)),
        k(weight.size(2)), H1(H - k + 1), W1(W - k + 1), H2(H1 / 2), W2(W1 / 2),
        K(k * k * Ci), P1(H1 * W1) {}
  // in an NHWC image: where each conv output position's window starts, and where each
  // (tap, input channel) sits from there, in the weights' (k, k, C_in) order
  std::vector<int64_t> corners() const {
    std::vector<int64_t> at(P1);
    for (int64_t p = 0; p < P1; ++p) at[p] = ((p / W1) * W + p % W1) * Ci;
    return at;
  }
  std::vector<int64_t> taps() const {
    std::vector<int64_t> tap(K);
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j)
        for (int64_t c = 0; c < Ci; ++c) tap[(i * k + j) * Ci + c] = (i * W + j) * Ci + c;
    return tap;
  }
};

// Q positions, one vector of output channels: out[q] = bias + sum_t x[at[q] + tap[t]] * w[t]
template <int Q>
void conv_positions(const float* __restrict__ x, const int64_t* at, const int64_t* tap,
                    int64_t K, const float* __restrict__ w, int64_t Co, vec bias,
                    float* __restrict__ out) {
  vec acc[Q];
  for (int q = 0; q < Q; ++q) acc[q] = bias;
  for (int64_t t = 0; t < K; ++t) {
    const vec wv = load(w + t * Co);
    const float* xt = x + tap[t];
    for (int q = 0; q < Q; ++q) acc[q] += xt[at[q]] * wv;
  }
  for (int q = 0; q < Q; ++q) store(out + q * Co, acc[q]);
}

// One output channel's pooled outputs, each a window (its corner in the NHWC image and its
// gradient): adds their weight gradients into dw ([i][j * C_in + ci], rows of LP floats) and,
// when gin is set, their input gradients into gin. run<K, NV>: k and the row's vectors known
// when compiling, so the k x NV weight-gradient sums stay in registers across the windows.
struct Windows {
  const float* image;
  float* gin;
  const float* w;  // this channel's weights, laid out as dw
  float* dw;
  int64_t row_stride, LP;
  int64_t* corner;
  float* grad;
  int64_t count = 0;

  template <int K, int NV>
  void run() {
    vec acc[K][NV];
    for (int i = 0; i < K; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = load(dw + i * LP + v * B);
    for (int64_t n = 0; n < count; ++n) {
      const float gv = grad[n];
      const float* x = image + corner[n];
      for (int i = 0; i < K; ++i)
        for (int v = 0; v < NV; ++v) acc[i][v] += gv * load(x + i * row_stride + v * B);
    }
    for (int i = 0; i < K; ++i)
      for (int v = 0; v < NV; ++v) store(dw + i * LP + v * B, acc[i][v]);
    input_grads<K, NV>();
  }

  void run_any(int64_t k) {
    for (int64_t n = 0; n < count; ++n) {
      const float gv = grad[n];
      const float* x = image + corner[n];
      for (int64_t i = 0; i < k; ++i)
        for (int64_t v = 0; v < LP; v += B)
          store(dw + i * LP + v, load(dw + i * LP + v) + gv * load(x + i * row_stride + v));
    }
    input_grads(k);
  }

  void input_grads(int64_t k) {
    // neighbouring windows overlap, and adding into memory a store has just written waits for
    // it: alternate between the first and the second half of the windows (rows apart)
    if (gin == nullptr) return;
    const int64_t half = (count + 1) / 2;
    for (int64_t t = 0; t < count; ++t) {
      const int64_t n = t % 2 == 0 ? t / 2 : half + t / 2;
      const float gv = grad[n];
      float* g = gin + corner[n];
      for (int64_t i = 0; i < k; ++i)
        for (int64_t v = 0; v < LP; v += B)
          store(g + i * row_stride + v, load(g + i * row_stride + v) + gv * load(w + i * LP + v));
    }
  }

  template <int K, int NV>
  void input_grads() {  // the same, unrolled, with this channel's weight rows in registers
    if (gin == nullptr) return;
    vec wv[K][NV];
    for (int i = 0; i < K; ++i)
      for (int v = 0; v < NV; ++v) wv[i][v] = load(w + i * LP + v * B);
    const int64_t half = (count + 1) / 2;
    for (int64_t t = 0; t < count; ++t) {
      const int64_t n = t % 2 == 0 ? t / 2 : half + t / 2;
      const float gv = grad[n];
      float* g = gin + corner[n];
      for (int i = 0; i < K; ++i)
        for (int v = 0; v < NV; ++v)
          store(g + i * row_stride + v * B, load(g + i * row_stride + v * B) + gv * wv[i][v]);
    }
  }
};

}  // namespace

std::vector<at::Tensor> forward(const at::Tensor& x, const at::Tensor& weight,
                                const at::Tensor& bias) {
  TORCH_CHECK(x.dim() == 3 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "x: a contiguous float32 (N, H, W) tensor");
  TORCH_CHECK(x.size(2) % 2 == 0, "the input width must be even");
  const Shape s(x, weight.size(0), weight.size(2));
  auto wt = weight.contiguous().to(at::kFloat);
  auto bt = bias.contiguous().to(at::kFloat);
  auto out = at::empty({s.N, s.H2, s.W2, s.C}, x.options());
  auto arg = at::empty({s.N, s.H2, s.W2, s.C}, x.options().dtype(at::kByte));
  const float *xp = x.data_ptr<float>(), *wp = wt.data_ptr<float>(), *bp = bt.data_ptr<float>();
  float* op = out.data_ptr<float>();
  uint8_t* ap = arg.data_ptr<uint8_t>();
  const int64_t taps = s.k * s.k;
  at::parallel_for(0, s.N, 8, [&](int64_t n0, int64_t n1) {
    // locals, not fields of `s`: a store through a uint8_t pointer may alias anything, and
    // the compiler would reload every field for every element
    const int64_t H2 = s.H2, W2 = s.W2, C = s.C, S = s.S, per_image = s.H2 * s.W2 * s.C;
    Columns cols(s);
    Aligned conv(2 * s.run_pad);  // phase even, then phase odd
    std::vector<const float*> src_even(taps), src_odd(taps);
    for (int64_t t = 0; t < taps; ++t) {
      src_even[t] = cols.tap(t / s.k, t % s.k, false);
      src_odd[t] = cols.tap(t / s.k, t % s.k, true);
    }
    // per channel: the pooled values and their window positions (as floats: one vector type
    // for the whole loop, which is what lets the compiler vectorise it)
    std::vector<float> pooled(s.C * s.H2 * s.S), which(s.C * s.H2 * s.S);
    for (int64_t n = n0; n < n1; ++n) {
      cols.split(xp + n * s.H * s.W, s.H);
      for (int64_t c = 0; c < s.C; ++c) {
        conv_channel(src_even.data(), src_odd.data(), wp + c * taps, bp[c], taps, s.run_pad,
                     conv.data);
        const float* __restrict__ ev = conv.data;
        const float* __restrict__ od = conv.data + s.run_pad;
        for (int64_t oh = 0; oh < s.H2; ++oh) {
          const int64_t r0 = 2 * oh * s.S, r1 = r0 + s.S;
          float* __restrict__ pv = pooled.data() + (c * s.H2 + oh) * s.S;
          float* __restrict__ pa = which.data() + (c * s.H2 + oh) * s.S;
          // the first maximum in row-major order: a later value wins only when strictly
          // larger (ATen's rule, ties included); branch-free, so it vectorises
#pragma omp simd
          for (int64_t u = 0; u < s.S; ++u) {
            const float a = ev[r0 + u], b = od[r0 + u], c2 = ev[r1 + u], d = od[r1 + u];
            const float top = b > a ? b : a, bottom = d > c2 ? d : c2;
            const float where_top = b > a ? 1.f : 0.f, where_bottom = d > c2 ? 3.f : 2.f;
            const bool down = bottom > top;
            const float best = down ? bottom : top;
            pv[u] = best > 0.f ? best : 0.f;
            pa[u] = down ? where_bottom : where_top;
          }
        }
      }
      // into (H2, W2, C) order
      float* __restrict__ on = op + n * per_image;
      uint8_t* __restrict__ an = ap + n * per_image;
      for (int64_t oh = 0; oh < H2; ++oh)
        for (int64_t u = 0; u < W2; ++u)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t from = (c * H2 + oh) * S + u, to = (oh * W2 + u) * C + c;
            on[to] = pooled[from];
            an[to] = static_cast<uint8_t>(which[from]);
          }
    }
  });
  return {out, arg};
}

// gradients of the weight and bias (x needs none: it is the network's input)
std::vector<at::Tensor> backward(const at::Tensor& grad_out, const at::Tensor& out,
                                 const at::Tensor& arg, const at::Tensor& x, int64_t k) {
  const Shape s(x, out.size(3), k);
  auto g = grad_out.contiguous().to(at::kFloat);
  const float *gp = g.data_ptr<float>(), *op = out.data_ptr<float>(), *xp = x.data_ptr<float>();
  const uint8_t* ap = arg.data_ptr<uint8_t>();
  const int64_t taps = k * k;
  GradSums sums(s.C * taps + s.C);  // weight grads, then bias grads
  at::parallel_for(0, s.N, 8, [&](int64_t n0, int64_t n1) {
    // locals, not fields of `s` (see forward)
    const int64_t H2 = s.H2, W2 = s.W2, C = s.C, S = s.S, per_image = s.H2 * s.W2 * s.C;
    const int64_t plane = H2 * S, run_pad = s.run_pad;
    double* acc = sums.row();
    Columns cols(s);
    std::vector<float> masked(per_image);        // grad_out where ReLU let it through
    std::vector<float> gt(C * plane, 0.f);       // the same, one plane per channel
    std::vector<float> wt(C * plane, 4.f);       // its window position (4: none), as floats
                                                 // so the loops below have one vector type
    // the conv output's gradient, phase even then odd, zero past run (tap_grads reads run_pad)
    Aligned dense(2 * run_pad);
    std::vector<const float*> src(taps);
    std::vector<float> lanes(C * taps * B, 0.f);  // weight gradients, B partial sums each
    auto flush = [&] { sums.add(lanes.data(), C * taps, B); };
    for (int64_t n = n0; n < n1; ++n) {
      const float* __restrict__ on = op + n * per_image;
      const float* __restrict__ gn = gp + n * per_image;
      const uint8_t* __restrict__ an = ap + n * per_image;
      // clipped by ReLU (output 0): no gradient; a branch here would be mispredicted half
      // the time, a select vectorises
#pragma omp simd
      for (int64_t o = 0; o < per_image; ++o) masked[o] = on[o] > 0.f ? gn[o] : 0.f;
      for (int64_t oh = 0; oh < H2; ++oh)
        for (int64_t u = 0; u < W2; ++u)
          for (int64_t c = 0; c < C; ++c) {
            const int64_t o = (oh * W2 + u) * C + c, t = (c * H2 + oh) * S + u;
            gt[t] = masked[o];
            wt[t] = static_cast<float>(an[o]);
          }
      cols.split(xp + n * s.H * s.W, s.H);
      for (int64_t c = 0; c < C; ++c) {
        float* __restrict__ ev = dense.data;
        float* __restrict__ od = dense.data + run_pad;
        for (int64_t oh = 0; oh < H2; ++oh) {
          const int64_t r0 = 2 * oh * S, r1 = r0 + S;
          const float* __restrict__ gv = gt.data() + (c * H2 + oh) * S;
          const float* __restrict__ q = wt.data() + (c * H2 + oh) * S;
#pragma omp simd
          for (int64_t u = 0; u < S; ++u) {
            ev[r0 + u] = q[u] == 0.f ? gv[u] : 0.f;
            od[r0 + u] = q[u] == 1.f ? gv[u] : 0.f;
            ev[r1 + u] = q[u] == 2.f ? gv[u] : 0.f;
            od[r1 + u] = q[u] == 3.f ? gv[u] : 0.f;
          }
        }
        for (int64_t r = 2 * plane; r < s.run; ++r) ev[r] = od[r] = 0.f;  // odd H1
        const float* __restrict__ gc = gt.data() + c * plane;
        float bsum = 0.f;
#pragma omp simd reduction(+ : bsum)
        for (int64_t t = 0; t < plane; ++t) bsum += gc[t];
        acc[C * taps + c] += bsum;
        // dW[c][t] = sum over both phases of dense * (the input that tap t read there)
        for (int odd = 0; odd < 2; ++odd) {
          for (int64_t t = 0; t < taps; ++t)
            src[t] = cols.tap(t / k, t % k, odd);
          for (int64_t t0 = 0; t0 < taps; t0 += R) {
            const int q = static_cast<int>(std::min<int64_t>(R, taps - t0));
            DISPATCH(tap_grads, q, dense.data + odd * run_pad, src.data() + t0, run_pad,
                        lanes.data() + (c * taps + t0) * B);
          }
        }
      }
      if ((n - n0) % 8 == 7) flush();  // float partial sums over at most 8 images
    }
    flush();
  });
  auto grads = sums.total();
  return {grads.narrow(0, 0, s.C * taps).view({s.C, 1, k, k}), grads.narrow(0, s.C * taps, s.C)};
}

// x (N, H, W, C_in) contiguous; weight (C_out, C_in, k, k), C_out a multiple of B; bias
// (C_out). out (N, H2, W2, C_out) and argmax (uint8, 0..3: the window position of the first
// maximum) as in the first stage.
std::vector<at::Tensor> forward_nhwc(const at::Tensor& x, const at::Tensor& weight,
                                     const at::Tensor& bias) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat && x.is_contiguous(),
              "x: a contiguous float32 (N, H, W, C) tensor");
  TORCH_CHECK(weight.size(1) == x.size(3) && weight.size(0) % B == 0,
              "weight: (C_out, C_in, k, k) with C_out a multiple of ", B);
  const Shape2 s(x, weight);
  auto wt = weight.to(at::kFloat).permute({2, 3, 1, 0}).contiguous();  // (k, k, C_in, C_out)
  auto bt = bias.to(at::kFloat).contiguous();
  auto out = at::empty({s.N, s.H2, s.W2, s.Co}, x.options());
  auto arg = at::empty({s.N, s.H2, s.W2, s.Co}, x.options().dtype(at::kByte));
  const float *xp = x.data_ptr<float>(), *wp = wt.data_ptr<float>(), *bp = bt.data_ptr<float>();
  float* op = out.data_ptr<float>();
  uint8_t* ap = arg.data_ptr<uint8_t>();
  const auto corners = s.corners(), taps = s.taps();
  at::parallel_for(0, s.N, 4, [&](int64_t n0, int64_t n1) {
    const int64_t Co = s.Co, K = s.K, P1 = s.P1, W1 = s.W1, H2 = s.H2, W2 = s.W2;
    Aligned conv(P1 * Co);  // [position][output channel]
    Aligned which(Co);
    for (int64_t n = n0; n < n1; ++n) {
      const float* xn = xp + n * s.H * s.W * s.Ci;
      for (int64_t cv = 0; cv < Co; cv += B) {
        const vec bv = load(bp + cv);
        for (int64_t p0 = 0; p0 < P1; p0 += R) {
          const int q = static_cast<int>(std::min<int64_t>(R, P1 - p0));
          DISPATCH(conv_positions, q, xn, corners.data() + p0, taps.data(), K, wp + cv, Co, bv,
                   conv.data + p0 * Co + cv);
        }
      }
      for (int64_t ph = 0; ph < H2; ++ph)
        for (int64_t pw = 0; pw < W2; ++pw) {
          const float* __restrict__ a = conv.data + (2 * ph * W1 + 2 * pw) * Co;
          const float *__restrict__ b = a + Co, *__restrict__ c = a + W1 * Co;
          const float* __restrict__ d = c + Co;
          float* __restrict__ o = op + ((n * H2 + ph) * W2 + pw) * Co;
          float* __restrict__ wf = which.data;
          // the first maximum in row-major order, as in the first stage; branch-free (a
          // branch here is mispredicted half the time), with the position as a float so the
          // loop has one vector type
#pragma omp simd
          for (int64_t v = 0; v < Co; ++v) {
            const float top = b[v] > a[v] ? b[v] : a[v], bottom = d[v] > c[v] ? d[v] : c[v];
            const float where_top = b[v] > a[v] ? 1.f : 0.f;
            const float where_bottom = d[v] > c[v] ? 3.f : 2.f;
            const bool down = bottom > top;
            const float best = down ? bottom : top;
            o[v] = best > 0.f ? best : 0.f;
            wf[v] = down ? where_bottom : where_top;
          }
          uint8_t* __restrict__ g = ap + ((n * H2 + ph) * W2 + pw) * Co;
          for (int64_t v = 0; v < Co; ++v) g[v] = static_cast<uint8_t>(wf[v]);
        }
    }
  });
  return {out, arg};
}

// Gradients of the weight, the bias and (when input_grad) the input x, in x's NHWC layout;
// grad_out (N, C_out, H2, W2) contiguous, the layout autograd hands back through a flatten.
// Max-pooling sends each pooled output's gradient to one conv output (its window's maximum),
// and ReLU drops about half of them: the conv output's gradient is at most a quarter dense.
// So both gradients are built from the pooled outputs one by one, each touching its k x k
// window: a window row (k columns x C_in channels) is contiguous in NHWC, k*C_in floats, a
// few vectors. About a sixth of the multiply-adds of the dense formulation.
std::vector<at::Tensor> backward_nhwc(const at::Tensor& grad_out, const at::Tensor& out,
                                      const at::Tensor& arg, const at::Tensor& x,
                                      const at::Tensor& weight, bool input_grad) {
  const Shape2 s(x, weight);
  const int64_t L = s.k * s.Ci, LP = (L + B - 1) / B * B;  // a window row, padded to vectors
  auto g = grad_out.contiguous().to(at::kFloat);  // (N, C_out, H2, W2)
  // the weights as [C_out][i][j * C_in + ci], each row zero-padded to LP: the padding lanes
  // add 0 to the input gradient's next elements
  auto rows = at::zeros({s.Co, s.k, LP}, at::kFloat);
  rows.narrow(2, 0, L).copy_(weight.to(at::kFloat).permute({0, 2, 3, 1}).reshape({s.Co, s.k, L}));
  auto gx = input_grad ? at::empty_like(x) : at::Tensor();
  const float *gp = g.data_ptr<float>(), *op = out.data_ptr<float>(), *xp = x.data_ptr<float>();
  const float* wr = rows.data_ptr<float>();
  float* gxp = input_grad ? gx.data_ptr<float>() : nullptr;
  const uint8_t* ap = arg.data_ptr<uint8_t>();
  const int64_t P = s.Co * s.k * LP + s.Co;  // weight grads in the rows' layout, then bias
  GradSums sums(P);
  at::parallel_for(0, s.N, 4, [&](int64_t n0, int64_t n1) {
    // locals, not fields of `s` (see forward)
    const int64_t Co = s.Co, Ci = s.Ci, H2 = s.H2, W2 = s.W2, W = s.W, k = s.k;
    const int64_t size = s.H * s.W * s.Ci, row_stride = W * Ci;
    Aligned image(size + LP);  // the input image, padded: a window row's last vector stays in
    Aligned grad_in(size + LP);
    Aligned lanes(P);  // float partial sums of the weight and bias gradients
    std::vector<int64_t> corners(H2 * W2);
    std::vector<float> grads(H2 * W2);
    auto flush = [&] { sums.add(lanes.data, P, 1); };
    for (int64_t n = n0; n < n1; ++n) {
      std::copy(xp + n * size, xp + (n + 1) * size, image.data);
      if (input_grad) std::fill(grad_in.data, grad_in.data + size + LP, 0.f);
      const int64_t o0 = n * H2 * W2 * Co, g0 = o0;  // out and arg: (H2, W2, C), grad: (C, H2, W2)
      for (int64_t co = 0; co < Co; ++co) {
        Windows wins{image.data, input_grad ? grad_in.data : nullptr, wr + co * k * LP,
                     lanes.data + co * k * LP, row_stride, LP, corners.data(), grads.data()};
        float db = 0.f;
        for (int64_t ph = 0; ph < H2; ++ph)
          for (int64_t pw = 0; pw < W2; ++pw) {
            const int64_t o = o0 + (ph * W2 + pw) * Co + co;
            // an output ReLU clipped passes no gradient
            const float gv = op[o] > 0.f ? gp[g0 + (co * H2 + ph) * W2 + pw] : 0.f;
            const int w = ap[o];
            wins.corner[wins.count] = ((2 * ph + w / 2) * W + 2 * pw + w % 2) * Ci;
            wins.grad[wins.count++] = gv;
            db += gv;
          }
        if (k == 5 && LP == 2 * B) wins.run<5, 2>();  // LeNet-5's conv2 (AVX-512)
        else if (k == 5 && LP == 4 * B) wins.run<5, 4>();  // the same, 8-float vectors
        else wins.run_any(k);
        lanes.data[Co * k * LP + co] += db;
      }
      if (input_grad) std::copy(grad_in.data, grad_in.data + size, gxp + n * size);
      if ((n - n0) % 8 == 7) flush();  // float partial sums over at most 8 images
    }
    flush();
  });
  auto grads = sums.total();
  auto gw = grads.narrow(0, 0, s.Co * s.k * LP).view({s.Co, s.k, LP}).narrow(2, 0, L);
  gw = gw.reshape({s.Co, s.k, s.k, s.Ci}).permute({0, 3, 1, 2}).contiguous();
  return {gw, grads.narrow(0, s.Co * s.k * LP, s.Co), gx};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "conv (1 channel) + 2x2 max-pool + ReLU, forward");
  m.def("backward", &backward, "the same, weight and bias gradients");
  m.def("forward_nhwc", &forward_nhwc, "conv (NHWC, C_out a multiple of vector_width) + 2x2 "
        "max-pool + ReLU, forward");
  m.def("backward_nhwc", &backward_nhwc, "the same, weight, bias and input gradients");
  m.def("vector_width", [] { return B; }, "floats per vector register the kernels use");
}
