/* icl.cpu_kernels' C kernels: fused forward and backward passes of the released model's attention,
   its tanh GELU and the per-model LayerNorm, for float and double tensors on a CPU. Built with
   -ffp-contract=off, so that the arithmetic is what is written (no fused multiply-adds) on every CPU. */

#include <float.h>
#include <math.h>
#include <stdlib.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

#define VECTOR_BYTES 32

typedef float vexp_float_vec __attribute__((vector_size(VECTOR_BYTES)));
typedef int vexp_float_int __attribute__((vector_size(VECTOR_BYTES)));

/* e^x on float lanes, as Cephes' expf computes it: 2^n e^r, with |r| <= ln(2) / 2 and a polynomial
   for e^r, in vector arithmetic. Below -87.3 (where e^x is no longer a normal float) it is exactly
   0, as a masked logit needs; above 88.3 it is clamped. */
static inline vexp_float_vec vexp_float(vexp_float_vec x)
{
    vexp_float_int underflow = x < -87.3f, clamped = underflow | (x > 88.3f);
    vexp_float_vec limit = (vexp_float_vec){0} + 88.3f;
    limit = (vexp_float_vec)(((vexp_float_int)(-limit) & underflow) | ((vexp_float_int)limit & ~underflow));
    x = (vexp_float_vec)(((vexp_float_int)x & ~clamped) | ((vexp_float_int)limit & clamped));
    vexp_float_vec y = x * 1.44269504088896341f + 0.5f;
#if defined(__AVX__) && VECTOR_BYTES == 32
    vexp_float_vec fn = _mm256_floor_ps(y); /* the same floor in one instruction */
    vexp_float_int n = __builtin_convertvector(fn, vexp_float_int);
#else
    vexp_float_int n = __builtin_convertvector(y, vexp_float_int);
    n += __builtin_convertvector(n, vexp_float_vec) > y; /* floor: a true comparison is -1 */
    vexp_float_vec fn = __builtin_convertvector(n, vexp_float_vec);
#endif
    vexp_float_vec r = x - fn * 0.693359375f + fn * 2.12194440e-4f; /* ln 2 in two parts */
    vexp_float_vec p = (vexp_float_vec){0} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    vexp_float_vec two_n = (vexp_float_vec)((n + 127) << 23);
    return (vexp_float_vec)((vexp_float_int)(p * two_n) & ~underflow);
}

typedef double vexp_double_vec __attribute__((vector_size(VECTOR_BYTES)));

/* Double precision serves the tests (gradient checks), where speed does not matter: libm's exp. */
static inline vexp_double_vec vexp_double(vexp_double_vec x)
{
    for (int l = 0; l < (int)(VECTOR_BYTES / sizeof(double)); l++)
        x[l] = exp(x[l]);
    return x;
}

#define REAL float
#define MAXREAL FLT_MAX
#define MASKINT int
#define NAME(x) x##_float
#define CONSTANT_HEAD_WIDTHS /* only float trains models; double serves the tests */
/* 8 float lanes: the attention copies whole vectors and transposes them in registers, where the
   compiler has the generic shuffle (GCC 12+, Clang); otherwise it copies value by value */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define TRANSPOSE_8
#endif
#endif
#include "cpu_kernels_typed.h"
#undef REAL
#undef MAXREAL
#undef MASKINT
#undef NAME
#undef CONSTANT_HEAD_WIDTHS
#undef TRANSPOSE_8

#define REAL double
#define MAXREAL DBL_MAX
#define MASKINT long long
#define NAME(x) x##_double
#include "cpu_kernels_typed.h"
