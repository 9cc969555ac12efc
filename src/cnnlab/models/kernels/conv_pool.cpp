// LeNet-5's first stage in one pass: a 1-channel k x k convolution, 2 x 2 / 2 max-pooling and
// ReLU, forward and backward, on the CPU in float32. Why it exists: with six output channels
// ATen's channels_last max-pool cannot fill a vector register and its convolution kernels are
// built for many channels; this stage took 60-70% of a LeNet-5 training step
// (docs/training.md). Here every inner loop runs over contiguous memory and vectorises.
//
// The trick: each image is split into its even and odd columns (xe, xo). The convolution at
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

constexpr int64_t B = 16;  // pad, so vector loops may run past the last valid column

struct Shape {
  int64_t N, H, W, C, k, S, H1, H2, W2, run;
  Shape(const at::Tensor& x, int64_t C_, int64_t k_)
      : N(x.size(0)), H(x.size(1)), W(x.size(2)), C(C_), k(k_), S(W / 2), H1(H - k + 1),
        H2(H1 / 2), W2((W - k + 1) / 2), run(H1 * S) {}
  int64_t padded() const { return H * S + k * S + B; }
};

// xe[r * S + u] = x[r][2u], xo[r * S + u] = x[r][2u + 1]
void split_columns(const float* __restrict__ x, float* __restrict__ xe, float* __restrict__ xo,
                   int64_t rows, int64_t S) {
  for (int64_t p = 0; p < rows * S; ++p) {
    xe[p] = x[2 * p];
    xo[p] = x[2 * p + 1];
  }
}

// tap (i, j) of output phase `odd` reads this array at this offset (see the file's comment)
inline const float* tap(const float* xe, const float* xo, int64_t S, int64_t i, int64_t j,
                        bool odd) {
  const int64_t m = j / 2;
  if (!odd) return (j % 2 ? xo : xe) + i * S + m;
  return (j % 2 ? xe + 1 : xo) + i * S + m;
}

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
  at::parallel_for(0, s.N, 8, [&](int64_t n0, int64_t n1) {
    std::vector<float> xe(s.padded(), 0.f), xo(s.padded(), 0.f);
    std::vector<float> conv(2 * s.run + B);  // phase even, then phase odd
    std::vector<const float*> src(s.k * s.k);
    // per channel: the pooled values and their window positions (as floats: one vector type
    // for the whole loop, which is what lets the compiler vectorise it)
    std::vector<float> pooled(s.C * s.H2 * s.S), which(s.C * s.H2 * s.S);
    for (int64_t n = n0; n < n1; ++n) {
      split_columns(xp + n * s.H * s.W, xe.data(), xo.data(), s.H, s.S);
      for (int64_t c = 0; c < s.C; ++c) {
        for (int odd = 0; odd < 2; ++odd) {
          for (int64_t t = 0; t < s.k * s.k; ++t)
            src[t] = tap(xe.data(), xo.data(), s.S, t / s.k, t % s.k, odd);
          const float* wc = wp + c * s.k * s.k;
          float* __restrict__ o = conv.data() + odd * s.run;
          // blocks of B positions: the k * k multiply-adds accumulate in one register
          for (int64_t p0 = 0; p0 < s.run; p0 += B) {
            float acc[B];
            for (int64_t v = 0; v < B; ++v) acc[v] = bp[c];
            for (int64_t t = 0; t < s.k * s.k; ++t) {
              const float wv = wc[t];
              const float* __restrict__ in = src[t] + p0;
#pragma omp simd
              for (int64_t v = 0; v < B; ++v) acc[v] += wv * in[v];
            }
            for (int64_t v = 0; v < B; ++v) o[p0 + v] = acc[v];
          }
        }
        const float* __restrict__ ev = conv.data();
        const float* __restrict__ od = conv.data() + s.run;
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
      float* __restrict__ on = op + n * s.H2 * s.W2 * s.C;
      uint8_t* __restrict__ an = ap + n * s.H2 * s.W2 * s.C;
      for (int64_t oh = 0; oh < s.H2; ++oh)
        for (int64_t u = 0; u < s.W2; ++u)
          for (int64_t c = 0; c < s.C; ++c) {
            on[(oh * s.W2 + u) * s.C + c] = pooled[(c * s.H2 + oh) * s.S + u];
            an[(oh * s.W2 + u) * s.C + c] = static_cast<uint8_t>(which[(c * s.H2 + oh) * s.S + u]);
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
  const int64_t P = s.C * k * k + s.C;  // weight grads, then bias grads
  const int64_t T = at::get_num_threads();
  std::vector<double> partial(T * P, 0.0);
  at::parallel_for(0, s.N, 8, [&](int64_t n0, int64_t n1) {
    double* acc = partial.data() + at::get_thread_num() * P;
    std::vector<float> xe(s.padded(), 0.f), xo(s.padded(), 0.f);
    std::vector<float> gt(s.C * s.H2 * s.S, 0.f);  // the gradient per channel, ReLU applied
    std::vector<float> wt(s.C * s.H2 * s.S, 4.f);  // its window position (4: none), as floats
                                                   // so the loop below has one vector type
    std::vector<float> dense(2 * s.run);           // the conv output's gradient, both phases
    for (int64_t n = n0; n < n1; ++n) {
      const float* __restrict__ on = op + n * s.H2 * s.W2 * s.C;
      const float* __restrict__ gn = gp + n * s.H2 * s.W2 * s.C;
      const uint8_t* __restrict__ an = ap + n * s.H2 * s.W2 * s.C;
      for (int64_t oh = 0; oh < s.H2; ++oh)
        for (int64_t u = 0; u < s.W2; ++u)
          for (int64_t c = 0; c < s.C; ++c) {
            const int64_t o = (oh * s.W2 + u) * s.C + c, t = (c * s.H2 + oh) * s.S + u;
            const float gv = on[o] > 0.f ? gn[o] : 0.f;  // clipped by ReLU: no gradient
            gt[t] = gv;
            wt[t] = static_cast<float>(an[o]);
          }
      split_columns(xp + n * s.H * s.W, xe.data(), xo.data(), s.H, s.S);
      for (int64_t c = 0; c < s.C; ++c) {
        float* __restrict__ ev = dense.data();
        float* __restrict__ od = dense.data() + s.run;
        for (int64_t oh = 0; oh < s.H2; ++oh) {
          const int64_t r0 = 2 * oh * s.S, r1 = r0 + s.S;
          const float* __restrict__ gv = gt.data() + (c * s.H2 + oh) * s.S;
          const float* __restrict__ q = wt.data() + (c * s.H2 + oh) * s.S;
#pragma omp simd
          for (int64_t u = 0; u < s.S; ++u) {
            ev[r0 + u] = q[u] == 0.f ? gv[u] : 0.f;
            od[r0 + u] = q[u] == 1.f ? gv[u] : 0.f;
            ev[r1 + u] = q[u] == 2.f ? gv[u] : 0.f;
            od[r1 + u] = q[u] == 3.f ? gv[u] : 0.f;
          }
        }
        for (int64_t r = 2 * s.H2 * s.S; r < s.run; ++r) ev[r] = od[r] = 0.f;  // odd H1
        const float* __restrict__ gc = gt.data() + c * s.H2 * s.S;
        float bsum = 0.f;
#pragma omp simd reduction(+ : bsum)
        for (int64_t t = 0; t < s.H2 * s.S; ++t) bsum += gc[t];
        acc[s.C * k * k + c] += bsum;
        // dW[c][i][j] = sum over both phases of dense * (the input that tap read)
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            float sum = 0.f;
            for (int odd = 0; odd < 2; ++odd) {
              const float* __restrict__ d = dense.data() + odd * s.run;
              const float* __restrict__ src = tap(xe.data(), xo.data(), s.S, i, j, odd);
#pragma omp simd reduction(+ : sum)
              for (int64_t p = 0; p < s.run; ++p) sum += d[p] * src[p];
            }
            acc[(c * k + i) * k + j] += sum;
          }
      }
    }
  });
  auto grads = at::zeros({P}, at::kDouble);
  double* total = grads.data_ptr<double>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t p = 0; p < P; ++p) total[p] += partial[t * P + p];
  grads = grads.to(at::kFloat);
  return {grads.narrow(0, 0, s.C * k * k).view({s.C, 1, k, k}), grads.narrow(0, s.C * k * k, s.C)};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "conv (1 channel) + 2x2 max-pool + ReLU, forward");
  m.def("backward", &backward, "the same, weight and bias gradients");
}
