// Winograd F(2x2, 3x3) and F(4x4, 3x3) transforms (Lavin and Gray, 2016), written once over
// GCC vector types of channels and compiled per ISA (conv2d_winograd_portable.cpp,
// _avx2.cpp, _avx512.cpp), with the weights' transform U = G g G^T;
// conv2d_winograd.cpp blocks the tiles and runs the 16 GEMMs between the passes.
//
//   input:  V = B^T d B,  B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   output: Y = A^T M A,  A^T = [1 1 1 0; 0 1 -1 -1]
//
// Both run a channel vector at a time (NHWC keeps a pixel's channels together),
// then the channels past the last whole vector one by one.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/conv2d.h"
#include "cpu/conv2d_winograd_table.h"
#include "cpu/vector_width.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including conv2d_winograd_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {
namespace {

// Tile t of batch x tiles_h x tiles_w: its image and its 2x2 block's row and column.
struct Tile {
  int64_t n, ty, tx;
};
inline Tile tile_at(int64_t t, int64_t tiles_h, int64_t tiles_w) {
  return {t / (tiles_h * tiles_w), t / tiles_w % tiles_h, t % tiles_w};
}

constexpr int kVecBytes = static_cast<int>(kVectorBytes);  // cpu/vector_width.h

template <typename T> struct VectorOf;
template <> struct VectorOf<float> { typedef float type __attribute__((vector_size(kVecBytes))); };
template <> struct VectorOf<double> { typedef double type __attribute__((vector_size(kVecBytes))); };

// A run of W channels: a vector (W = lanes) or one value (W = 1).
template <typename T, int W> struct Lanes {
  typedef typename VectorOf<T>::type type;
  static type load(const T* p) {
    type v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(T* p, type v) { std::memcpy(p, &v, sizeof v); }
  static type zero() { return type{}; }
  static type relu(type v) { return v < type{} ? type{} : v; }
};
template <typename T> struct Lanes<T, 1> {
  typedef T type;
  static T load(const T* p) { return *p; }
  static void store(T* p, T v) { *p = v; }
  static T zero() { return T(0); }
  static T relu(T v) { return v < T(0) ? T(0) : v; }
};

// One tile's channels [c, c + W): d from x (zero outside), V = B^T d B.
template <typename T, int W>
inline __attribute__((always_inline)) void input_tile(const Conv2dShape& s, const T* x_image, int64_t ih0,
                                                       int64_t iw0, bool interior, int64_t c, T* v,
                                                       int64_t v_stride, int64_t v_offset) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V d[4][4];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const int64_t ih = ih0 + i, iw = iw0 + j;
      d[i][j] = (interior || (ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w))
                    ? L::load(x_image + (ih * s.in_w + iw) * s.in_c + c)
                    : L::zero();
    }
  }
  V t[4][4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    t[0][j] = d[0][j] - d[2][j];
    t[1][j] = d[1][j] + d[2][j];
    t[2][j] = d[2][j] - d[1][j];
    t[3][j] = d[1][j] - d[3][j];
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    T* row = v + (4 * i) * v_stride + v_offset + c;
    L::store(row, t[i][0] - t[i][2]);
    L::store(row + v_stride, t[i][1] + t[i][2]);
    L::store(row + 2 * v_stride, t[i][2] - t[i][1]);
    L::store(row + 3 * v_stride, t[i][1] - t[i][3]);
  }
}

template <typename T>
void input_tiles(const Conv2dShape& s, const T* x_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
                 int64_t tile_end, T* v, int64_t v_stride) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const auto [n, ty, tx] = tile_at(t, tiles_h, tiles_w);
    const int64_t ih0 = 2 * ty - s.pad_top, iw0 = 2 * tx - s.pad_left;
    const bool interior = ih0 >= 0 && iw0 >= 0 && ih0 + 4 <= s.in_h && iw0 + 4 <= s.in_w;
    const T* x_image = x_nhwc + n * s.in_h * s.in_w * s.in_c;
    const int64_t offset = (t - tile_begin) * s.in_c;
    int64_t c = 0;
    for (; c + W <= s.in_c; c += W) input_tile<T, W>(s, x_image, ih0, iw0, interior, c, v, v_stride, offset);
    for (; c < s.in_c; ++c) input_tile<T, 1>(s, x_image, ih0, iw0, interior, c, v, v_stride, offset);
  }
}

// One tile's channels [o, o + W): Y = A^T M A + bias, its pixels inside y written.
template <typename T, int W>
inline __attribute__((always_inline)) void output_tile(const Conv2dShape& s, const T* m, int64_t m_stride,
                                                        int64_t m_offset, const T* bias, bool relu, int64_t o,
                                                        int64_t oh0, int64_t ow0, T* y_image) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V q[4][4];
#pragma GCC unroll 4
  for (int p = 0; p < 16; ++p) q[p / 4][p % 4] = L::load(m + p * m_stride + m_offset + o);
  V r[2][4];
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[0][j] = q[0][j] + q[1][j] + q[2][j];
    r[1][j] = q[1][j] - q[2][j] - q[3][j];
  }
  const V b = bias != nullptr ? L::load(bias + o) : L::zero();
#pragma GCC unroll 2
  for (int a = 0; a < 2; ++a) {
    V out[2] = {r[a][0] + r[a][1] + r[a][2] + b, r[a][1] - r[a][2] - r[a][3] + b};
    if (oh0 + a >= s.out_h) break;
#pragma GCC unroll 2
    for (int e = 0; e < 2; ++e) {
      if (ow0 + e >= s.out_w) break;
      L::store(y_image + ((oh0 + a) * s.out_w + ow0 + e) * s.out_c + o, relu ? L::relu(out[e]) : out[e]);
    }
  }
}

template <typename T>
void output_tiles(const Conv2dShape& s, const T* m, int64_t m_stride, const T* bias, bool relu, int64_t tiles_h,
                  int64_t tiles_w, int64_t tile_begin, int64_t tile_end, int64_t o_begin, int64_t o_end,
                  T* y_nhwc) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const auto [n, ty, tx] = tile_at(t, tiles_h, tiles_w);
    T* y_image = y_nhwc + n * s.out_h * s.out_w * s.out_c;
    const int64_t offset = (t - tile_begin) * s.out_c;
    int64_t o = o_begin;
    for (; o + W <= o_end; o += W) output_tile<T, W>(s, m, m_stride, offset, bias, relu, o, 2 * ty, 2 * tx, y_image);
    for (; o < o_end; ++o) output_tile<T, 1>(s, m, m_stride, offset, bias, relu, o, 2 * ty, 2 * tx, y_image);
  }
}

// One dy tile's channels [o, o + W): E = G' e G'^T (4x4 from the 2x2 block e).
template <typename T, int W>
inline __attribute__((always_inline)) void dy_tile(const Conv2dShape& s, const T* dy_image, int64_t oh0,
                                                    int64_t ow0, int64_t o, T* w, int64_t w_stride,
                                                    int64_t w_offset) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V e[2][2];
#pragma GCC unroll 2
  for (int a = 0; a < 2; ++a) {
#pragma GCC unroll 2
    for (int b = 0; b < 2; ++b) {
      e[a][b] = (oh0 + a < s.out_h && ow0 + b < s.out_w)
                    ? L::load(dy_image + ((oh0 + a) * s.out_w + ow0 + b) * s.out_c + o)
                    : L::zero();
    }
  }
  const T half = T(0.5);
  V g[4][2];  // G' e
#pragma GCC unroll 2
  for (int b = 0; b < 2; ++b) {
    g[0][b] = e[0][b];
    g[1][b] = half * (e[0][b] + e[1][b]);
    g[2][b] = half * (e[0][b] - e[1][b]);
    g[3][b] = -e[1][b];
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    T* row = w + (4 * i) * w_stride + w_offset + o;
    L::store(row, g[i][0]);
    L::store(row + w_stride, half * (g[i][0] + g[i][1]));
    L::store(row + 2 * w_stride, half * (g[i][0] - g[i][1]));
    L::store(row + 3 * w_stride, -g[i][1]);
  }
}

template <typename T>
void dy_tiles(const Conv2dShape& s, const T* dy_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
              int64_t tile_end, T* w, int64_t w_stride) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const auto [n, ty, tx] = tile_at(t, tiles_h, tiles_w);
    const T* dy_image = dy_nhwc + n * s.out_h * s.out_w * s.out_c;
    const int64_t offset = (t - tile_begin) * s.out_c;
    int64_t o = 0;
    for (; o + W <= s.out_c; o += W) dy_tile<T, W>(s, dy_image, 2 * ty, 2 * tx, o, w, w_stride, offset);
    for (; o < s.out_c; ++o) dy_tile<T, 1>(s, dy_image, 2 * ty, 2 * tx, o, w, w_stride, offset);
  }
}

// Weights (c, o) pairs [k, k + W): U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1].
template <typename T, int W>
inline __attribute__((always_inline)) void weight_tile(int64_t w_stride, int64_t u_stride, const T* w_hwio, int64_t k,
                                                       T* u) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  const T half = T(0.5);
  V t[4][3];  // G g
#pragma GCC unroll 3
  for (int j = 0; j < 3; ++j) {
    const V g0 = L::load(w_hwio + j * w_stride + k), g1 = L::load(w_hwio + (3 + j) * w_stride + k),
            g2 = L::load(w_hwio + (6 + j) * w_stride + k);
    t[0][j] = g0;
    t[1][j] = half * (g0 + g1 + g2);
    t[2][j] = half * (g0 - g1 + g2);
    t[3][j] = g2;
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    T* row = u + (4 * i) * u_stride + k;
    L::store(row, t[i][0]);
    L::store(row + u_stride, half * (t[i][0] + t[i][1] + t[i][2]));
    L::store(row + 2 * u_stride, half * (t[i][0] - t[i][1] + t[i][2]));
    L::store(row + 3 * u_stride, t[i][2]);
  }
}

template <typename T>
void weight_tiles(int64_t w_stride, int64_t u_stride, int64_t k_begin, int64_t k_end, const T* w_hwio, T* u) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  int64_t k = k_begin;
  for (; k + W <= k_end; k += W) weight_tile<T, W>(w_stride, u_stride, w_hwio, k, u);
  for (; k < k_end; ++k) weight_tile<T, 1>(w_stride, u_stride, w_hwio, k, u);
}

// Backward-weights' pairs [k, k + W): dw = A'^T S A', A'^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1].
template <typename T, int W>
inline __attribute__((always_inline)) void weight_gradient_tile(int64_t co, const T* sums, int64_t k, T* dw_hwio) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V r[3][4];  // A'^T S
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const V q0 = L::load(sums + j * co + k), q1 = L::load(sums + (4 + j) * co + k),
            q2 = L::load(sums + (8 + j) * co + k), q3 = L::load(sums + (12 + j) * co + k);
    r[0][j] = q0 + q1 + q2;
    r[1][j] = q1 - q2;
    r[2][j] = q1 + q2 + q3;
  }
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) {
    T* row = dw_hwio + (3 * i) * co + k;
    L::store(row, r[i][0] + r[i][1] + r[i][2]);
    L::store(row + co, r[i][1] - r[i][2]);
    L::store(row + 2 * co, r[i][1] + r[i][2] + r[i][3]);
  }
}

template <typename T>
void weight_gradient_tiles(int64_t co, int64_t k_begin, int64_t k_end, const T* sums, T* dw_hwio) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  int64_t k = k_begin;
  for (; k + W <= k_end; k += W) weight_gradient_tile<T, W>(co, sums, k, dw_hwio);
  for (; k < k_end; ++k) weight_gradient_tile<T, 1>(co, sums, k, dw_hwio);
}

// F(4x4, 3x3): 6x6 input windows, 4x4 output blocks, 36 positions p = 6 * row + column.
//
//   B^T = [4  0 -5  0  1  0]   G = [ 1/4     0     0]   A^T = [1  1  1  1  1  0]
//         [0 -4 -4  1  1  0]       [-1/6 -1/6  -1/6]         [0  1 -1  2 -2  0]
//         [0  4 -4 -1  1  0]       [-1/6  1/6  -1/6]         [0  1  1  4  4  0]
//         [0 -2 -1  2  1  0]       [1/24  1/12  1/6]         [0  1 -1  8 -8  1]
//         [0  2 -1 -2  1  0]       [1/24 -1/12  1/6]
//         [0  4  0 -5  0  1]       [   0     0     1]
//
// Each 1-D transform below is the matrix above with its common terms shared.
template <typename V, typename T>
inline __attribute__((always_inline)) void input_1d4(const V (&d)[6], V (&t)[6]) {
  const V a = d[4] - T(4) * d[2], b = d[3] - T(4) * d[1];
  const V c = d[4] - d[2], e = T(2) * (d[3] - d[1]);
  t[0] = T(4) * d[0] - T(5) * d[2] + d[4];
  t[1] = a + b;
  t[2] = a - b;
  t[3] = c + e;
  t[4] = c - e;
  t[5] = T(4) * d[1] - T(5) * d[3] + d[5];
}

template <typename V, typename T>
inline __attribute__((always_inline)) void output_1d4(const V (&m)[6], V (&y)[4]) {
  const V s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
  y[0] = m[0] + s12 + s34;
  y[1] = d12 + T(2) * d34;
  y[2] = s12 + T(4) * s34;
  y[3] = d12 + T(8) * d34 + m[5];
}

template <typename V, typename T>
inline __attribute__((always_inline)) void weight_1d4(const V (&g)[3], V (&u)[6]) {
  const V even = g[0] + g[2], quarter = T(1) / T(4) * g[0] + g[2];
  u[0] = T(1) / T(4) * g[0];
  u[1] = T(-1) / T(6) * (even + g[1]);
  u[2] = T(-1) / T(6) * (even - g[1]);
  u[3] = T(1) / T(6) * (quarter + T(1) / T(2) * g[1]);
  u[4] = T(1) / T(6) * (quarter - T(1) / T(2) * g[1]);
  u[5] = g[2];
}

// One tile's channels [c, c + W): d from x (zero outside), V = B^T d B.
template <typename T, int W>
inline __attribute__((always_inline)) void input_tile4(const Conv2dShape& s, const T* x_image, int64_t ih0,
                                                        int64_t iw0, bool interior, int64_t c, T* v,
                                                        int64_t v_stride, int64_t v_offset) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V t[6][6];  // B^T d, column by column
#pragma GCC unroll 6
  for (int j = 0; j < 6; ++j) {
    V d[6];
    const int64_t iw = iw0 + j;
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const int64_t ih = ih0 + i;
      d[i] = (interior || (ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w))
                 ? L::load(x_image + (ih * s.in_w + iw) * s.in_c + c)
                 : L::zero();
    }
    V col[6];
    input_1d4<V, T>(d, col);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) t[i][j] = col[i];
  }
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) {
    V row[6];
    input_1d4<V, T>(t[i], row);
    T* out = v + (6 * i) * v_stride + v_offset + c;
#pragma GCC unroll 6
    for (int j = 0; j < 6; ++j) L::store(out + j * v_stride, row[j]);
  }
}

template <typename T>
void input_tiles4(const Conv2dShape& s, const T* x_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
                  int64_t tile_end, T* v, int64_t v_stride) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const auto [n, ty, tx] = tile_at(t, tiles_h, tiles_w);
    const int64_t ih0 = 4 * ty - s.pad_top, iw0 = 4 * tx - s.pad_left;
    const bool interior = ih0 >= 0 && iw0 >= 0 && ih0 + 6 <= s.in_h && iw0 + 6 <= s.in_w;
    const T* x_image = x_nhwc + n * s.in_h * s.in_w * s.in_c;
    const int64_t offset = (t - tile_begin) * s.in_c;
    int64_t c = 0;
    for (; c + W <= s.in_c; c += W) input_tile4<T, W>(s, x_image, ih0, iw0, interior, c, v, v_stride, offset);
    for (; c < s.in_c; ++c) input_tile4<T, 1>(s, x_image, ih0, iw0, interior, c, v, v_stride, offset);
  }
}

// One tile's channels [o, o + W): Y = A^T M A + bias, its pixels inside y written.
template <typename T, int W>
inline __attribute__((always_inline)) void output_tile4(const Conv2dShape& s, const T* m, int64_t m_stride,
                                                         int64_t m_offset, const T* bias, bool relu, int64_t o,
                                                         int64_t oh0, int64_t ow0, T* y_image) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V r[4][6];  // A^T M, column by column
#pragma GCC unroll 6
  for (int j = 0; j < 6; ++j) {
    V q[6];
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) q[i] = L::load(m + (6 * i + j) * m_stride + m_offset + o);
    V col[4];
    output_1d4<V, T>(q, col);
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a) r[a][j] = col[a];
  }
  const V b = bias != nullptr ? L::load(bias + o) : L::zero();
  const int64_t rows = std::min<int64_t>(4, s.out_h - oh0), cols = std::min<int64_t>(4, s.out_w - ow0);
#pragma GCC unroll 4
  for (int a = 0; a < 4; ++a) {
    if (a >= rows) break;
    V out[4];
    output_1d4<V, T>(r[a], out);
    T* y_row = y_image + ((oh0 + a) * s.out_w + ow0) * s.out_c + o;
#pragma GCC unroll 4
    for (int e = 0; e < 4; ++e) {
      if (e >= cols) break;
      const V value = out[e] + b;
      L::store(y_row + e * s.out_c, relu ? L::relu(value) : value);
    }
  }
}

template <typename T>
void output_tiles4(const Conv2dShape& s, const T* m, int64_t m_stride, const T* bias, bool relu, int64_t tiles_h,
                   int64_t tiles_w, int64_t tile_begin, int64_t tile_end, int64_t o_begin, int64_t o_end,
                   T* y_nhwc) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const auto [n, ty, tx] = tile_at(t, tiles_h, tiles_w);
    T* y_image = y_nhwc + n * s.out_h * s.out_w * s.out_c;
    const int64_t offset = (t - tile_begin) * s.out_c;
    int64_t o = o_begin;
    for (; o + W <= o_end; o += W) {
      output_tile4<T, W>(s, m, m_stride, offset, bias, relu, o, 4 * ty, 4 * tx, y_image);
    }
    for (; o < o_end; ++o) output_tile4<T, 1>(s, m, m_stride, offset, bias, relu, o, 4 * ty, 4 * tx, y_image);
  }
}

// Weights (c, o) pairs [k, k + W): U = G g G^T, 36 positions.
template <typename T, int W>
inline __attribute__((always_inline)) void weight_tile4(int64_t w_stride, int64_t u_stride, const T* w_hwio, int64_t k,
                                                        T* u) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V t[6][3];  // G g
#pragma GCC unroll 3
  for (int j = 0; j < 3; ++j) {
    const V g[3] = {L::load(w_hwio + j * w_stride + k), L::load(w_hwio + (3 + j) * w_stride + k),
                    L::load(w_hwio + (6 + j) * w_stride + k)};
    V col[6];
    weight_1d4<V, T>(g, col);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) t[i][j] = col[i];
  }
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) {
    V row[6];
    weight_1d4<V, T>(t[i], row);
#pragma GCC unroll 6
    for (int j = 0; j < 6; ++j) L::store(u + (6 * i + j) * u_stride + k, row[j]);
  }
}

template <typename T>
void weight_tiles4(int64_t w_stride, int64_t u_stride, int64_t k_begin, int64_t k_end, const T* w_hwio, T* u) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  int64_t k = k_begin;
  for (; k + W <= k_end; k += W) weight_tile4<T, W>(w_stride, u_stride, w_hwio, k, u);
  for (; k < k_end; ++k) weight_tile4<T, 1>(w_stride, u_stride, w_hwio, k, u);
}

// F(3x3, 4x4), backward-weights over the same tiles: with y = A^T (G g ⊙ B^T d) per
// tile, dw = G^T (A e ⊙ B^T d) summed over tiles (e the tile's dy), so the input keeps
// the forward's transform and dy takes A (A^T above, transposed).
template <typename V, typename T>
inline __attribute__((always_inline)) void dy_1d4(const V (&e)[4], V (&f)[6]) {
  const V even = e[0] + e[2], odd = e[1] + e[3];
  const V even4 = e[0] + T(4) * e[2], odd4 = T(2) * e[1] + T(8) * e[3];
  f[0] = e[0];
  f[1] = even + odd;
  f[2] = even - odd;
  f[3] = even4 + odd4;
  f[4] = even4 - odd4;
  f[5] = e[3];
}

template <typename V, typename T>
inline __attribute__((always_inline)) void weight_gradient_1d4(const V (&q)[6], V (&w)[3]) {
  const V s12 = q[1] + q[2], d12 = q[1] - q[2], s34 = q[3] + q[4], d34 = q[3] - q[4];
  w[0] = T(1) / T(4) * q[0] - T(1) / T(6) * s12 + T(1) / T(24) * s34;
  w[1] = T(1) / T(12) * d34 - T(1) / T(6) * d12;
  w[2] = T(1) / T(6) * (s34 - s12) + q[5];
}

// One dy tile's channels [o, o + W): E = A e A^T (6x6 from the 4x4 block e, zeros
// outside dy).
template <typename T, int W>
inline __attribute__((always_inline)) void dy_tile4(const Conv2dShape& s, const T* dy_image, int64_t oh0,
                                                     int64_t ow0, int64_t o, T* w, int64_t w_stride,
                                                     int64_t w_offset) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V t[6][4];  // A e, column by column
#pragma GCC unroll 4
  for (int b = 0; b < 4; ++b) {
    V e[4];
#pragma GCC unroll 4
    for (int a = 0; a < 4; ++a) {
      e[a] = (oh0 + a < s.out_h && ow0 + b < s.out_w)
                 ? L::load(dy_image + ((oh0 + a) * s.out_w + ow0 + b) * s.out_c + o)
                 : L::zero();
    }
    V col[6];
    dy_1d4<V, T>(e, col);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) t[i][b] = col[i];
  }
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) {
    V row[6];
    dy_1d4<V, T>(t[i], row);
    T* out = w + (6 * i) * w_stride + w_offset + o;
#pragma GCC unroll 6
    for (int j = 0; j < 6; ++j) L::store(out + j * w_stride, row[j]);
  }
}

template <typename T>
void dy_tiles4(const Conv2dShape& s, const T* dy_nhwc, int64_t tiles_h, int64_t tiles_w, int64_t tile_begin,
               int64_t tile_end, T* w, int64_t w_stride) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const auto [n, ty, tx] = tile_at(t, tiles_h, tiles_w);
    const T* dy_image = dy_nhwc + n * s.out_h * s.out_w * s.out_c;
    const int64_t offset = (t - tile_begin) * s.out_c;
    int64_t o = 0;
    for (; o + W <= s.out_c; o += W) dy_tile4<T, W>(s, dy_image, 4 * ty, 4 * tx, o, w, w_stride, offset);
    for (; o < s.out_c; ++o) dy_tile4<T, 1>(s, dy_image, 4 * ty, 4 * tx, o, w, w_stride, offset);
  }
}

// Backward-weights' pairs [k, k + W): dw = G^T S G of the 36 positions' sums.
template <typename T, int W>
inline __attribute__((always_inline)) void weight_gradient_tile4(int64_t co, const T* sums, int64_t k,
                                                                  T* dw_hwio) {
  using L = Lanes<T, W>;
  using V = typename L::type;
  V r[3][6];  // G^T S, column by column
#pragma GCC unroll 6
  for (int j = 0; j < 6; ++j) {
    V q[6];
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) q[i] = L::load(sums + (6 * i + j) * co + k);
    V col[3];
    weight_gradient_1d4<V, T>(q, col);
#pragma GCC unroll 3
    for (int a = 0; a < 3; ++a) r[a][j] = col[a];
  }
#pragma GCC unroll 3
  for (int a = 0; a < 3; ++a) {
    V row[3];
    weight_gradient_1d4<V, T>(r[a], row);
#pragma GCC unroll 3
    for (int b = 0; b < 3; ++b) L::store(dw_hwio + (3 * a + b) * co + k, row[b]);
  }
}

template <typename T>
void weight_gradient_tiles4(int64_t co, int64_t k_begin, int64_t k_end, const T* sums, T* dw_hwio) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  int64_t k = k_begin;
  for (; k + W <= k_end; k += W) weight_gradient_tile4<T, W>(co, sums, k, dw_hwio);
  for (; k < k_end; ++k) weight_gradient_tile4<T, 1>(co, sums, k, dw_hwio);
}

}  // namespace

// Backward-data's weights: U's pair k = o * c_f + c of the forward's weights turned
// half-way, g[tap] = w[(8 - tap) * c_f * o_f + c * o_f + o].  A W x W block of the
// forward's (c, o) is read a row of o per c and transposed in registers (log2 W rounds
// of two-vector shuffles swapping off-diagonal blocks), into a buffer of nine taps that
// the tile transform then reads as runs of c.
template <typename V, int W>
inline __attribute__((always_inline)) void transpose_square(V (&r)[W]) {
  typedef decltype(r[0] < r[0]) Mask;  // integer lanes of the same width
#pragma GCC unroll 5
  for (int b = W / 2; b >= 1; b /= 2) {
    Mask lo{}, hi{};
    for (int lane = 0; lane < W; ++lane) {
      lo[lane] = (lane & b) ? W + lane - b : lane;
      hi[lane] = (lane & b) ? W + lane : lane + b;
    }
#pragma GCC unroll 16
    for (int i = 0; i < W; ++i) {
      if (i & b) continue;
      const V a = r[i], c = r[i + b];
      r[i] = __builtin_shuffle(a, c, lo);
      r[i + b] = __builtin_shuffle(a, c, hi);
    }
  }
}

template <typename T>
void turned_tiles4(int64_t c_f, int64_t o_f, int64_t o_begin, int64_t o_end, const T* w_hwio, T* u) {
  constexpr int W = kVecBytes / static_cast<int>(sizeof(T));
  using L = Lanes<T, W>;
  using V = typename L::type;
  const int64_t co = c_f * o_f, c_whole = c_f / W * W;
  // W rows of U at a time, their nine taps transposed into turned[(tap * W + o) * c_f + c]
  // (9 W c_f values, in L2), then transformed row by row: U's rows are written as 16 or
  // 36 runs of c_f, where a block at a time scattered each store over 16 rows.
  std::vector<T> buffer(static_cast<size_t>(9 * W * c_f));
  T* turned = buffer.data();
  int64_t o0 = o_begin;
  for (; o0 + W <= o_end; o0 += W) {
    for (int64_t c0 = 0; c0 < c_whole; c0 += W) {
      for (int tap = 0; tap < 9; ++tap) {
        const T* src = w_hwio + (8 - tap) * co + c0 * o_f + o0;
        V r[W];
#pragma GCC unroll 16
        for (int c = 0; c < W; ++c) r[c] = L::load(src + c * o_f);
        transpose_square<V, W>(r);
#pragma GCC unroll 16
        for (int o = 0; o < W; ++o) L::store(turned + (tap * W + o) * c_f + c0, r[o]);
      }
    }
    for (int tap = 0; tap < 9; ++tap) {
      for (int64_t c = c_whole; c < c_f; ++c) {
        for (int o = 0; o < W; ++o) turned[(tap * W + o) * c_f + c] = w_hwio[(8 - tap) * co + c * o_f + o0 + o];
      }
    }
    for (int o = 0; o < W; ++o) {
      const T* g = turned + o * c_f;
      T* row = u + (o0 + o) * c_f;
      int64_t c = 0;
      for (; c + W <= c_f; c += W) weight_tile4<T, W>(W * c_f, co, g + c, 0, row + c);
      for (; c < c_f; ++c) weight_tile4<T, 1>(W * c_f, co, g + c, 0, row + c);
    }
  }
  for (int64_t o = o0; o < o_end; ++o) {
    for (int64_t c = 0; c < c_f; ++c) {
      T g[9];
      for (int tap = 0; tap < 9; ++tap) g[tap] = w_hwio[(8 - tap) * co + c * o_f + o];
      weight_tile4<T, 1>(1, co, g, 0, u + o * c_f + c);
    }
  }
}

template <typename T>
WinogradKernels<T> winograd_kernel_table() {
  return {&input_tiles<T>, &output_tiles<T>, &dy_tiles<T>, &weight_tiles<T>, &weight_gradient_tiles<T>,
          &input_tiles4<T>, &output_tiles4<T>, &weight_tiles4<T>, &dy_tiles4<T>,
          &weight_gradient_tiles4<T>, &turned_tiles4<T>};
}
template WinogradKernels<float> winograd_kernel_table<float>();
template WinogradKernels<double> winograd_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
