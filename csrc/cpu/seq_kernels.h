// Sequence-op kernels (seq_table.h), written once as loops over contiguous
// columns that the compiler vectorises for the ISA of the including
// translation unit (seq_portable.cpp, _avx2.cpp, _avx512.cpp).
//
// The reductions and gather_add walk the columns in blocks of kBlock values
// (four vectors of this ISA; narrower blocks overlap at the end of a row) whose
// accumulators stay in registers while the rows stream past: one load and one
// add (or compare and blend) per value and row, the output written once.
// maxout with 2-4 pieces loads the pieces of one vector's worth of units as P
// vectors and separates them with constant shuffles (GCC vector extensions,
// lowered to this ISA's permutes), then compares whole vectors: written as
// scalar code, the compares became branches that mispredict on every other
// unit (9 ns per unit).  Its backward zeros its rows and stores each unit's
// gradient.  Maxima take a value when it beats the best so far, or when it is
// the first NaN: !(v <= best) & (best == best), written with bitwise operators
// and selects so the loops stay branch-free.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "cpu/seq_table.h"
#include "cpu/vector_width.h"

#ifndef FASTNN_ISA_NAMESPACE
#error "define FASTNN_ISA_NAMESPACE before including seq_kernels.h"
#endif

namespace fastnn::cpu::FASTNN_ISA_NAMESPACE {
namespace seq_detail {

// One vector of this ISA (cpu/vector_width.h), and four: the reductions' and gather_add's
// register block of columns.
template <typename T>
constexpr int64_t kLanes = kVectorBytes / static_cast<int64_t>(sizeof(T));
template <typename T>
constexpr int64_t kBlock = 4 * kLanes<T>;

template <int64_t W>
using Width = std::integral_constant<int64_t, W>;

// Calls block(Width<W>{}, c0) over columns [0, cols): blocks of kBlock columns, then of
// kLanes, the last one overlapping its neighbour instead of running short, and single
// columns only below kLanes.  Every kernel below computes each column on its own and
// writes it once per block, so a column covered twice gets the same value twice.
template <typename T, typename F>
inline void for_column_blocks(int64_t cols, const F& block) {
  constexpr int64_t B = kBlock<T>, L = kLanes<T>;
  int64_t c = 0;
  for (; c + B <= cols; c += B) block(Width<B>{}, c);
  for (; c + L <= cols; c += L) block(Width<L>{}, c);
  if (c == cols) return;
  if (cols >= L) {
    block(Width<L>{}, cols - L);
    return;
  }
  for (; c < cols; ++c) block(Width<1>{}, c);
}

// Whether v takes the place of the running maximum b (the first NaN wins).
template <typename T>
inline bool beats(T v, T b) {
  return !(v <= b) & (b == b);
}

template <typename Index>
inline bool in_range(Index v, int64_t size) {
  const int64_t i = static_cast<int64_t>(v);
  return (i >= 0) & (i < size);
}

// One vector of T and the comparison mask (and winner) vector of its lanes.  (An alias
// template would drop the attribute, so the types come from specialisations.)
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(kVectorBytes)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(kVectorBytes)));
};
template <typename T>
using Vec = typename VecOf<T>::type;
template <typename T>
using Mask = decltype(Vec<T>{} < Vec<T>{});
template <typename T>
using Lane = std::conditional_t<sizeof(T) == 4, int32_t, int64_t>;  // a Mask<T> lane

// N consecutive vectors from p, and back: one vector load or store each.  (A memcpy of
// the whole array is expanded by GCC 12 in 16-byte moves on AVX2, and the vector loads
// that follow from the array then fail store forwarding: the AVX2 reductions ran 2-5x
// slower than the SSE2 ones.)
template <typename T, size_t N>
inline void load_vectors(Vec<T> (&v)[N], const T* p) {
  for (size_t n = 0; n < N; ++n) std::memcpy(&v[n], p + n * kLanes<T>, sizeof(Vec<T>));
}
template <typename T, size_t N>
inline void store_vectors(T* p, const Vec<T> (&v)[N]) {
  for (size_t n = 0; n < N; ++n) std::memcpy(p + n * kLanes<T>, &v[n], sizeof(Vec<T>));
}

// out lane i = value i * P + p of the P vectors v[0..P) side by side (piece p of unit i),
// as at most three two-vector shuffles.  (Vectors travel by reference: a 64-byte vector
// returned by value from a function compiled without AVX-512 changes the ABI.)
template <typename T, int P, int p, size_t... I>
inline void piece(const Vec<T>* v, Vec<T>& out, std::index_sequence<I...>) {
  constexpr int L = static_cast<int>(kLanes<T>);
  constexpr auto at = [](size_t i) { return static_cast<int>(i) * P + p; };  // in v[0..P)
  if constexpr (P == 2) {
    out = __builtin_shufflevector(v[0], v[1], at(I)...);
  } else if constexpr (P == 3) {
    const Vec<T> a = __builtin_shufflevector(v[0], v[1], (at(I) < 2 * L ? at(I) : 0)...);
    out = __builtin_shufflevector(a, v[2], (at(I) < 2 * L ? static_cast<int>(I) : at(I) - L)...);
  } else {
    static_assert(P == 4, "two, three or four pieces");
    const Vec<T> lo = __builtin_shufflevector(v[0], v[1], (at(I) < 2 * L ? at(I) : 0)...);
    const Vec<T> hi = __builtin_shufflevector(v[2], v[3], (at(I) >= 2 * L ? at(I) - 2 * L : 0)...);
    out = __builtin_shufflevector(lo, hi, (at(I) < 2 * L ? static_cast<int>(I) : L + static_cast<int>(I))...);
  }
}

// The running maximum over pieces 1..P-1 of kLanes units whose P vectors are v.
template <typename T, int P, int... Ps>
inline void take_pieces(const Vec<T>* v, Vec<T>& best, Mask<T>& where, std::integer_sequence<int, Ps...>) {
  const auto lanes = std::make_index_sequence<static_cast<size_t>(kLanes<T>)>{};
  const auto step = [&](auto p) {
    Vec<T> a;
    piece<T, P, decltype(p)::value>(v, a, lanes);
    const Mask<T> take = ~(a <= best) & (best == best);
    best = take ? a : best;
    where = take ? Mask<T>{} + static_cast<Lane<T>>(decltype(p)::value) : where;
  };
  (step(std::integral_constant<int, Ps + 1>{}), ...);
}

template <typename T, int P>
void maxout_fixed(const T* __restrict x, T* __restrict best, int32_t* __restrict which, int64_t begin,
                  int64_t end) {
  constexpr int64_t L = kLanes<T>;
  int64_t u = begin;
  for (; u + L <= end; u += L) {
    Vec<T> v[P];
    load_vectors(v, x + u * P);
    Vec<T> b;
    piece<T, P, 0>(v, b, std::make_index_sequence<static_cast<size_t>(L)>{});
    Mask<T> w = {};
    take_pieces<T, P>(v, b, w, std::make_integer_sequence<int, P - 1>{});
    std::memcpy(best + u, &b, sizeof b);
    if constexpr (sizeof(T) == 4) {
      std::memcpy(which + u, &w, sizeof w);  // already int32 lanes
    } else {
      typedef int32_t W32 __attribute__((vector_size(4 * L)));
      const W32 w32 = __builtin_convertvector(w, W32);
      std::memcpy(which + u, &w32, sizeof w32);
    }
  }
  for (; u < end; ++u) {
    const T* xu = x + u * P;
    T b = xu[0];
    int32_t w = 0;
    for (int p = 1; p < P; ++p) {
      const bool take = beats(xu[p], b);
      b = take ? xu[p] : b;
      w = take ? p : w;
    }
    best[u] = b;
    which[u] = w;
  }
}

// Any number of pieces: each piece of kLanes units loaded lane by lane, compared as vectors.
template <typename T>
void maxout_any(const T* __restrict x, T* __restrict best, int32_t* __restrict which, int64_t begin,
                int64_t end, int64_t pieces) {
  constexpr int64_t L = kLanes<T>;
  int64_t u = begin;
  for (; u + L <= end; u += L) {
    const T* xu = x + u * pieces;
    Vec<T> b;
    for (int64_t i = 0; i < L; ++i) b[i] = xu[i * pieces];
    Mask<T> w = {};
    for (int64_t p = 1; p < pieces; ++p) {
      Vec<T> a;
      for (int64_t i = 0; i < L; ++i) a[i] = xu[i * pieces + p];
      const Mask<T> take = ~(a <= b) & (b == b);
      b = take ? a : b;
      w = take ? Mask<T>{} + static_cast<Lane<T>>(p) : w;
    }
    std::memcpy(best + u, &b, sizeof b);
    for (int64_t i = 0; i < L; ++i) which[u + i] = static_cast<int32_t>(w[i]);
  }
  for (; u < end; ++u) {
    const T* xu = x + u * pieces;
    T b = xu[0];
    int32_t w = 0;
    for (int64_t p = 1; p < pieces; ++p) {
      const bool take = beats(xu[p], b);
      b = take ? xu[p] : b;
      w = take ? static_cast<int32_t>(p) : w;
    }
    best[u] = b;
    which[u] = w;
  }
}

// Output vector q of kLanes units' P pieces: value q * kLanes + i is piece (that % P) of
// unit (that / P), taken from the per-piece vectors a[0..P).
template <typename T, int P, int q, size_t... I>
inline void interleave(const Vec<T>* a, Vec<T>& out, std::index_sequence<I...>) {
  constexpr int L = static_cast<int>(kLanes<T>);
  constexpr auto unit = [](size_t i) { return (q * L + static_cast<int>(i)) / P; };
  constexpr auto part = [](size_t i) { return (q * L + static_cast<int>(i)) % P; };
  if constexpr (P == 2) {
    out = __builtin_shufflevector(a[0], a[1], (part(I) == 0 ? unit(I) : L + unit(I))...);
  } else if constexpr (P == 3) {
    const Vec<T> t = __builtin_shufflevector(
        a[0], a[1], (part(I) == 0 ? unit(I) : part(I) == 1 ? L + unit(I) : 0)...);
    out = __builtin_shufflevector(t, a[2], (part(I) < 2 ? static_cast<int>(I) : L + unit(I))...);
  } else {
    static_assert(P == 4, "two, three or four pieces");
    const Vec<T> lo = __builtin_shufflevector(
        a[0], a[1], (part(I) == 0 ? unit(I) : part(I) == 1 ? L + unit(I) : 0)...);
    const Vec<T> hi = __builtin_shufflevector(
        a[2], a[3], (part(I) == 2 ? unit(I) : part(I) == 3 ? L + unit(I) : 0)...);
    out = __builtin_shufflevector(lo, hi, (part(I) < 2 ? static_cast<int>(I) : L + static_cast<int>(I))...);
  }
}

template <typename T, int P, int... Qs>
inline void store_interleaved(const Vec<T>* a, T* out, std::integer_sequence<int, Qs...>) {
  const auto lanes = std::make_index_sequence<static_cast<size_t>(kLanes<T>)>{};
  Vec<T> v[P];
  (interleave<T, P, Qs>(a, v[Qs], lanes), ...);
  store_vectors(out, v);
}

// The backward with 2-4 pieces: per piece p the vector (which == p ? dy : 0), interleaved
// into the output with shuffles, every value written once.
template <typename T, int P>
int64_t maxout_backward_fixed(const T* __restrict dy, const int32_t* __restrict which, T* __restrict dx,
                              int64_t begin, int64_t end) {
  constexpr int64_t L = kLanes<T>;
  int64_t first_bad = -1;
  int64_t u = begin;
  for (; u + L <= end; u += L) {
    typedef int32_t W32 __attribute__((vector_size(4 * L)));
    W32 w32;
    std::memcpy(&w32, which + u, sizeof w32);
    const Mask<T> w = __builtin_convertvector(w32, Mask<T>);
    Vec<T> d;
    std::memcpy(&d, dy + u, sizeof d);
    Vec<T> a[P];
    for (int p = 0; p < P; ++p) a[p] = w == static_cast<Lane<T>>(p) ? d : Vec<T>{};
    store_interleaved<T, P>(a, dx + u * P, std::make_integer_sequence<int, P>{});
    if (first_bad < 0) {
      for (int64_t i = 0; i < L; ++i) {
        if (static_cast<uint32_t>(which[u + i]) >= static_cast<uint32_t>(P)) {
          first_bad = u + i;
          break;
        }
      }
    }
  }
  for (; u < end; ++u) {
    const int32_t w = which[u];
    for (int p = 0; p < P; ++p) dx[u * P + p] = p == w ? dy[u] : T(0);
    if (static_cast<uint32_t>(w) >= static_cast<uint32_t>(P) && first_bad < 0) first_bad = u;
  }
  return first_bad;
}

}  // namespace seq_detail

template <typename T>
void maxout_units(const T* __restrict x, T* __restrict best, int32_t* __restrict which, int64_t begin,
                  int64_t end, int64_t pieces) {
  using namespace seq_detail;
  switch (pieces) {
    case 1:
      for (int64_t u = begin; u < end; ++u) best[u] = x[u], which[u] = 0;
      return;
    case 2: return maxout_fixed<T, 2>(x, best, which, begin, end);
    case 3: return maxout_fixed<T, 3>(x, best, which, begin, end);
    case 4: return maxout_fixed<T, 4>(x, best, which, begin, end);
    default: return maxout_any(x, best, which, begin, end, pieces);
  }
}

// 2-4 pieces: interleaved vectors (above); otherwise zeros, then each unit's gradient at
// its piece: a vector fill and one store per unit.
template <typename T>
int64_t maxout_backward_units(const T* __restrict dy, const int32_t* __restrict which, T* __restrict dx,
                              int64_t begin, int64_t end, int64_t pieces) {
  using namespace seq_detail;
  switch (pieces) {
    case 2: return maxout_backward_fixed<T, 2>(dy, which, dx, begin, end);
    case 3: return maxout_backward_fixed<T, 3>(dy, which, dx, begin, end);
    case 4: return maxout_backward_fixed<T, 4>(dy, which, dx, begin, end);
    default: break;
  }
  std::memset(dx + begin * pieces, 0, sizeof(T) * static_cast<size_t>((end - begin) * pieces));
  int64_t first_bad = -1;
  for (int64_t u = begin; u < end; ++u) {
    const int64_t w = which[u];
    if (w >= 0 && w < pieces) {
      dx[u * pieces + w] = dy[u];
    } else if (first_bad < 0) {
      first_bad = u;
    }
  }
  return first_bad;
}

template <typename T>
void add_row(T* __restrict dst, const T* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// The column blocks below hold W values: W / kLanes whole vectors (W = 1: one scalar).
template <typename T>
void sum_rows(const T* __restrict x, int64_t rows, int64_t stride, int64_t cols, T* __restrict y, bool mean) {
  using namespace seq_detail;
  const T length = static_cast<T>(rows);
  const bool divide = mean && rows > 0;
  for_column_blocks<T>(cols, [&](auto width, int64_t c0) {
    constexpr int64_t W = decltype(width)::value;
    if constexpr (W == 1) {
      T acc = 0;
      for (int64_t r = 0; r < rows; ++r) acc += x[r * stride + c0];
      y[c0] = divide ? acc / length : acc;
    } else {
      constexpr int64_t N = W / kLanes<T>;
      Vec<T> acc[N] = {};
      for (int64_t r = 0; r < rows; ++r) {
        Vec<T> v[N];
        load_vectors(v, x + r * stride + c0);
        for (int64_t n = 0; n < N; ++n) acc[n] += v[n];
      }
      if (divide) {
        for (int64_t n = 0; n < N; ++n) acc[n] /= length;
      }
      store_vectors(y + c0, acc);
    }
  });
}

template <typename T>
void max_rows(const T* __restrict x, int64_t rows, int64_t stride, int64_t cols, T* __restrict y,
              int32_t* __restrict which) {
  using namespace seq_detail;
  for_column_blocks<T>(cols, [&](auto width, int64_t c0) {
    constexpr int64_t W = decltype(width)::value;
    if constexpr (W == 1) {
      T best = x[c0];
      int32_t where = 0;
      for (int64_t r = 1; r < rows; ++r) {
        const T v = x[r * stride + c0];
        const bool take = beats(v, best);
        best = take ? v : best;
        where = take ? static_cast<int32_t>(r) : where;
      }
      y[c0] = best;
      which[c0] = where;
    } else {
      constexpr int64_t N = W / kLanes<T>;
      Vec<T> best[N];
      Mask<T> where[N] = {};
      load_vectors(best, x + c0);
      for (int64_t r = 1; r < rows; ++r) {
        Vec<T> v[N];
        load_vectors(v, x + r * stride + c0);
        const Lane<T> here = static_cast<Lane<T>>(r);
        for (int64_t n = 0; n < N; ++n) {
          const Mask<T> take = ~(v[n] <= best[n]) & (best[n] == best[n]);
          best[n] = take ? v[n] : best[n];
          where[n] = take ? Mask<T>{} + here : where[n];
        }
      }
      store_vectors(y + c0, best);
      for (int64_t n = 0; n < N; ++n) {
        if constexpr (sizeof(T) == 4) {
          std::memcpy(which + c0 + n * kLanes<T>, &where[n], sizeof where[n]);
        } else {
          typedef int32_t W32 __attribute__((vector_size(4 * kLanes<T>)));
          const W32 w32 = __builtin_convertvector(where[n], W32);
          std::memcpy(which + c0 + n * kLanes<T>, &w32, sizeof w32);
        }
      }
    }
  });
}

template <typename T>
void fill_rows(const T* __restrict src, T* __restrict dst, int64_t rows, int64_t stride, int64_t cols, bool mean) {
  if (!mean) {
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * stride, src, sizeof(T) * static_cast<size_t>(cols));
    return;
  }
  const T length = static_cast<T>(rows);
  seq_detail::for_column_blocks<T>(cols, [&](auto width, int64_t c0) {
    constexpr int64_t W = decltype(width)::value;
    T share[W];
    for (int64_t j = 0; j < W; ++j) share[j] = src[c0 + j] / length;
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * stride + c0, share, sizeof share);
  });
}

template <typename T, typename Index>
int64_t gather_add_rows(const T* __restrict table, const Index* __restrict indices, T* __restrict out,
                        int64_t table_rows, int64_t cols, int64_t per_row, int64_t begin, int64_t end) {
  using namespace seq_detail;
  int64_t first_bad = -1;
  for (int64_t b = begin; b < end; ++b) {
    const Index* idx = indices + b * per_row;
    int64_t bad = -1;
    for (int64_t k = 0; k < per_row && bad < 0; ++k) {
      if (!in_range(idx[k], table_rows)) bad = k;
    }
    if (bad >= 0) {
      if (first_bad < 0) first_bad = b * per_row + bad;
      continue;
    }
    T* o = out + b * cols;
    for_column_blocks<T>(cols, [&](auto width, int64_t c0) {
      constexpr int64_t W = decltype(width)::value;
      if constexpr (W == 1) {
        T acc = 0;
        for (int64_t k = 0; k < per_row; ++k) acc += table[static_cast<int64_t>(idx[k]) * cols + c0];
        o[c0] = acc;
      } else {
        constexpr int64_t N = W / kLanes<T>;
        Vec<T> acc[N] = {};
        for (int64_t k = 0; k < per_row; ++k) {
          Vec<T> v[N];
          load_vectors(v, table + static_cast<int64_t>(idx[k]) * cols + c0);
          for (int64_t n = 0; n < N; ++n) acc[n] += v[n];
        }
        store_vectors(o + c0, acc);
      }
    });
  }
  return first_bad;
}

template <typename T>
SeqKernels<T> seq_kernel_table() {
  SeqKernels<T> table{};
  table.maxout_units = &maxout_units<T>;
  table.maxout_backward_units = &maxout_backward_units<T>;
  table.add_row = &add_row<T>;
  table.sum_rows = &sum_rows<T>;
  table.max_rows = &max_rows<T>;
  table.fill_rows = &fill_rows<T>;
  table.gather_add_rows_i32 = &gather_add_rows<T, int32_t>;
  table.gather_add_rows_u32 = &gather_add_rows<T, uint32_t>;
  table.gather_add_rows_i64 = &gather_add_rows<T, int64_t>;
  return table;
}
template SeqKernels<float> seq_kernel_table<float>();
template SeqKernels<double> seq_kernel_table<double>();

}  // namespace fastnn::cpu::FASTNN_ISA_NAMESPACE
