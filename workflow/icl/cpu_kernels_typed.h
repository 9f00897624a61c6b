/* The kernels of icl.cpu_kernels for one floating type REAL, included once per type by
   cpu_kernels.c, which defines REAL, MAXREAL, MASKINT, NAME(x) (a name with the type's suffix),
   VECTOR_BYTES and NAME(vexp).

   Arithmetic is on GCC/Clang vector types of VECTOR_BYTES, and each value gets the same operations
   in the same order whatever its position in a tensor, so a model's results never depend on the
   other models of its group. */

typedef REAL NAME(vec) __attribute__((vector_size(VECTOR_BYTES)));
typedef MASKINT NAME(vmask) __attribute__((vector_size(VECTOR_BYTES)));
/* the same vector at any address of a REAL, for arrays that torch allocated */
typedef REAL NAME(uvec) __attribute__((vector_size(VECTOR_BYTES), aligned(sizeof(REAL))));
#define vec NAME(vec)
#define uvec NAME(uvec)
#define vmask NAME(vmask)
#define LANES ((long)(VECTOR_BYTES / sizeof(REAL)))

static inline vec NAME(select)(vmask m, vec a, vec b)
{
    return (vec)(((vmask)a & m) | ((vmask)b & ~m));
}

static inline vec NAME(broadcast)(REAL x)
{
    vec v;
    for (long l = 0; l < LANES; l++)
        v[l] = x;
    return v;
}

/* The sizes of one attention call. The qkv projection's layout is [K, B, T, 3, H, W], y's is
   [K, B, Tq, H, W]; a unit n = (k, b, h) is one head of one sequence. */
struct NAME(dims) {
    long batch, positions, start, queries, heads, width, row, units;
};

#ifdef TRANSPOSE_8
/* The 8 x 8 transpose of `in` (vector l holds lane l's 8 values) into `out` (vector c holds value c of
   every lane), in three rounds of shuffles; it is its own inverse. */
static inline void NAME(transpose)(const vec *in, vec *out)
{
    vec t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(in[i], in[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(in[i], in[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4)
        for (int j = 0; j < 2; j++) {
            u[i + 2 * j] = __builtin_shufflevector(t[i + j], t[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[i + 2 * j + 1] = __builtin_shufflevector(t[i + j], t[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int c = 0; c < 4; c++) {
        out[c] = __builtin_shufflevector(u[c], u[c + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        out[c + 4] = __builtin_shufflevector(u[c], u[c + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}
#endif

/* Copy `rows` x width values at stride `row` from each lane's unit (at offset[l] + shift) into
   lanes: out[r * width + c][l]. */
static void NAME(gather)(const REAL *src, const long *offset, long shift, long rows, long row, long width, REAL scale,
                         vec *out)
{
#ifdef TRANSPOSE_8
    if (width % LANES == 0) { /* whole vectors of each unit's row, transposed in registers */
        for (long r = 0; r < rows; r++)
            for (long at = 0; at < width; at += LANES) {
                vec units[LANES];
                for (long l = 0; l < LANES; l++)
                    units[l] = *(const uvec *)(src + offset[l] + shift + r * row + at);
                NAME(transpose)(units, out + r * width + at);
                for (long c = 0; c < LANES; c++)
                    out[r * width + at + c] *= scale;
            }
        return;
    }
#endif
    for (long l = 0; l < LANES; l++)
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < width; c++)
                ((REAL *)out)[(r * width + c) * LANES + l] = src[offset[l] + shift + r * row + c] * scale;
}

/* The inverse of gather, for the first `lanes` lanes. */
static void NAME(scatter)(const vec *in, long rows, long width, REAL *dst, const long *offset, long shift, long row,
                          long lanes)
{
#ifdef TRANSPOSE_8
    if (width % LANES == 0) {
        for (long r = 0; r < rows; r++)
            for (long at = 0; at < width; at += LANES) {
                vec units[LANES];
                NAME(transpose)(in + r * width + at, units);
                for (long l = 0; l < lanes; l++)
                    *(uvec *)(dst + offset[l] + shift + r * row + at) = units[l];
            }
        return;
    }
#endif
    for (long l = 0; l < lanes; l++)
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < width; c++)
                dst[offset[l] + shift + r * row + c] = ((const REAL *)in)[(r * width + c) * LANES + l];
}

/* The units of lane group `group`: each lane's offsets in qkv and in y, and its model. Lanes past
   the last unit repeat it and are not written. Returns the number of real lanes. */
static long NAME(lanes_of)(const struct NAME(dims) *d, long group, long *qkv_at, long *y_at, long *model)
{
    long first = group * LANES;
    for (long l = 0; l < LANES; l++) {
        long n = first + l < d->units ? first + l : d->units - 1;
        long h = n % d->heads, sequence = n / d->heads;
        qkv_at[l] = sequence * d->positions * d->row + h * d->width;
        y_at[l] = sequence * d->queries * d->heads * d->width + h * d->width;
        model[l] = sequence / d->batch;
    }
    return d->units - first < LANES ? d->units - first : LANES;
}

/* Returns body(arguments) with `width` as a constant where it is one of the configs' head widths
   (4, 8, 16, 32), so that the compiler unrolls the loops over it; `width` names the argument. */
#ifdef CONSTANT_HEAD_WIDTHS
#define WITH_HEAD_WIDTH(body, ...)                                                                  \
    do {                                                                                            \
        switch (width) {                                                                            \
        case 4: { const long width = 4; return body(__VA_ARGS__); }                                 \
        case 8: { const long width = 8; return body(__VA_ARGS__); }                                 \
        case 16: { const long width = 16; return body(__VA_ARGS__); }                               \
        case 32: { const long width = 32; return body(__VA_ARGS__); }                               \
        }                                                                                           \
        return body(__VA_ARGS__);                                                                   \
    } while (0)
#else
#define WITH_HEAD_WIDTH(body, ...) return body(__VA_ARGS__)
#endif

/* Whether any bit of the vector at v is set (some lane is not all-zero bits), as one OR of machine words. */
static inline int NAME(any_bits)(const void *v)
{
    unsigned long long w[VECTOR_BYTES / sizeof(unsigned long long)], any = 0;
    __builtin_memcpy(w, v, sizeof w);
    for (unsigned long i = 0; i < sizeof w / sizeof *w; i++)
        any |= w[i];
    return any != 0;
}

/* needed[i * T + j]: whether key j can weigh in query row i for some lane: a lane sees it, or a lane
   sees no key of that row (and so averages every value). Any other key's probability is exactly 0
   in every lane (the exp of the most negative float less a finite maximum underflows to 0), so it
   adds only zeros, and the attention skips it. */
static void NAME(needed_keys)(const vmask *visible, long Tq, long T, unsigned char *needed)
{
    for (long i = 0; i < Tq; i++) {
        vmask seen = {0};
        for (long j = 0; j < T; j++)
            seen |= visible[i * T + j];
        vmask unseen = ~seen;
        int blind_lane = NAME(any_bits)(&unseen);
        for (long j = 0; j < T; j++)
            needed[i * T + j] = blind_lane || NAME(any_bits)(&visible[i * T + j]);
    }
}

/* Softmax attention of the released model. Its unit of work is T x W matrices (15 x 8 at the
   default size), on which a BLAS call costs more than its arithmetic. So LANES units are computed
   at once, one per SIMD lane, each lane doing what a lone unit would.

   y from qkv and the visibility mask [K, Tq, T] of the query rows (positions start..T-1), with the
   RBF logit q.k / sqrt(W) - ||k||^2 / 2 (rbf) or the dot-product logit q.k / sqrt(W); a masked
   logit is the most negative float. The probabilities are kept for the backward pass, in lane
   order [groups, Tq, T, LANES]. Returns nonzero if out of memory. */
static inline __attribute__((always_inline)) int NAME(attention_forward_body)(const REAL *qkv, const unsigned char *mask, REAL *y, REAL *probs, long models,
                            long batch, long positions, long start, long heads, long width, int rbf)
{
    long T = positions, W = width, Tq = positions - start;
    struct NAME(dims) d = {batch, T, start, Tq, heads, W, 3 * heads * W, models * batch * heads};
    REAL scale = 1 / sqrt((REAL)W);
    vec *q = aligned_alloc(VECTOR_BYTES, sizeof(vec) * (2 * Tq * W + 2 * T * W + 2 * T));
    vmask *visible = aligned_alloc(VECTOR_BYTES, sizeof(vmask) * Tq * T);
    unsigned char *needed = malloc(Tq * T);
    if (!q || !visible || !needed) {
        free(q);
        free(visible);
        free(needed);
        return 1;
    }
    vec *k = q + Tq * W, *v = k + T * W, *out = v + T * W, *bias = out + Tq * W, *s = bias + T;
    long qkv_at[LANES], y_at[LANES], model[LANES], visible_for = -1;
    for (long group = 0; group * LANES < d.units; group++) {
        long lanes = NAME(lanes_of)(&d, group, qkv_at, y_at, model);
        if (model[0] != model[LANES - 1] || model[0] != visible_for) {
            for (long l = 0; l < LANES; l++)
                for (long e = 0; e < Tq * T; e++)
                    ((MASKINT *)visible)[e * LANES + l] = mask[model[l] * Tq * T + e] ? -1 : 0;
            NAME(needed_keys)(visible, Tq, T, needed);
            visible_for = model[0] == model[LANES - 1] ? model[0] : -1;
        }
        NAME(gather)(qkv, qkv_at, start * d.row, Tq, d.row, W, scale, q);
        NAME(gather)(qkv, qkv_at, heads * W, T, d.row, W, 1, k);
        NAME(gather)(qkv, qkv_at, 2 * heads * W, T, d.row, W, 1, v);
        for (long j = 0; j < T; j++) {
            vec norm = {0};
            for (long c = 0; c < W; c++)
                norm += k[j * W + c] * k[j * W + c];
            bias[j] = rbf ? -(REAL)0.5 * norm : (vec){0};
        }
        uvec *p = (uvec *)probs + group * Tq * T;
        for (long i = 0; i < Tq; i++) {
            const unsigned char *used = needed + i * T;
            for (long j = 0; j < T; j++) {
                if (used[j]) {
                    s[j] = bias[j];
                    for (long c = 0; c < W; c++)
                        s[j] += q[i * W + c] * k[j * W + c];
                    s[j] = NAME(select)(visible[i * T + j], s[j], NAME(broadcast)(-MAXREAL));
                } else {
                    s[j] = NAME(broadcast)(-MAXREAL);
                }
            }
            vec top = NAME(broadcast)(-MAXREAL), total = {0};
            for (long j = 0; j < T; j++)
                top = NAME(select)(s[j] > top, s[j], top);
            for (long j = 0; j < T; j++) {
                if (used[j]) {
                    s[j] = NAME(vexp)(s[j] - top);
                    total += s[j];
                } else {
                    s[j] = (vec){0};
                }
            }
            for (long c = 0; c < W; c++)
                out[i * W + c] = (vec){0};
            for (long j = 0; j < T; j++) {
                p[i * T + j] = s[j] / total;
                if (used[j])
                    for (long c = 0; c < W; c++)
                        out[i * W + c] += p[i * T + j] * v[j * W + c];
            }
        }
        NAME(scatter)(out, Tq, W, y, y_at, 0, heads * W, lanes);
    }
    free(q);
    free(visible);
    free(needed);
    return 0;
}

int NAME(attention_forward)(const REAL *qkv, const unsigned char *mask, REAL *y, REAL *probs, long models, long batch,
                            long positions, long start, long heads, long width, int rbf)
{
    WITH_HEAD_WIDTH(NAME(attention_forward_body), qkv, mask, y, probs, models, batch, positions, start, heads, width, rbf);
}

/* dqkv from dy, qkv and the forward pass's probabilities. Returns nonzero if out of memory. */
static inline __attribute__((always_inline)) int NAME(attention_backward_body)(const REAL *qkv, const REAL *probs, const REAL *dy, REAL *dqkv, long models,
                             long batch, long positions, long start, long heads, long width, int rbf)
{
    long T = positions, W = width, Tq = positions - start;
    struct NAME(dims) d = {batch, T, start, Tq, heads, W, 3 * heads * W, models * batch * heads};
    REAL scale = 1 / sqrt((REAL)W);
    vec *q = aligned_alloc(VECTOR_BYTES, sizeof(vec) * (3 * Tq * W + 4 * T * W + 2 * T));
    unsigned char *used = malloc(T);
    if (!q || !used) {
        free(q);
        free(used);
        return 1;
    }
    vec *k = q + Tq * W, *v = k + T * W, *g = v + T * W, *dq = g + Tq * W, *dk = dq + Tq * W, *dv = dk + T * W;
    vec *ds = dv + T * W, *colsum = ds + T;
    long qkv_at[LANES], y_at[LANES], model[LANES];
    for (long group = 0; group * LANES < d.units; group++) {
        long lanes = NAME(lanes_of)(&d, group, qkv_at, y_at, model);
        NAME(gather)(qkv, qkv_at, start * d.row, Tq, d.row, W, scale, q);
        NAME(gather)(qkv, qkv_at, heads * W, T, d.row, W, 1, k);
        NAME(gather)(qkv, qkv_at, 2 * heads * W, T, d.row, W, 1, v);
        NAME(gather)(dy, y_at, 0, Tq, heads * W, W, 1, g);
        for (long e = 0; e < T * W; e++)
            dk[e] = dv[e] = (vec){0};
        for (long j = 0; j < T; j++)
            colsum[j] = (vec){0};
        const uvec *p = (const uvec *)probs + group * Tq * T;
        for (long i = 0; i < Tq; i++) {
            /* a key whose probability is 0 in every lane adds only zeros to every sum below */
            for (long j = 0; j < T; j++)
                used[j] = NAME(any_bits)(&p[i * T + j]);
            /* dP = dY V^T, then the softmax's dS = P (dP - <P, dP>) */
            vec dot = {0};
            for (long j = 0; j < T; j++)
                if (used[j]) {
                    ds[j] = (vec){0};
                    for (long c = 0; c < W; c++)
                        ds[j] += g[i * W + c] * v[j * W + c];
                    dot += p[i * T + j] * ds[j];
                }
            for (long j = 0; j < T; j++)
                if (used[j]) {
                    ds[j] = p[i * T + j] * (ds[j] - dot);
                    colsum[j] += ds[j];
                }
            /* dV = P^T dY, dQ = dS K / sqrt(W), dK = dS^T Q / sqrt(W) */
            for (long c = 0; c < W; c++)
                dq[i * W + c] = (vec){0};
            for (long j = 0; j < T; j++)
                if (used[j])
                    for (long c = 0; c < W; c++) {
                        dv[j * W + c] += p[i * T + j] * g[i * W + c];
                        dq[i * W + c] += ds[j] * k[j * W + c];
                        dk[j * W + c] += ds[j] * q[i * W + c];
                    }
            for (long c = 0; c < W; c++)
                dq[i * W + c] *= scale;
        }
        if (rbf) /* the logit's -||k||^2 / 2 */
            for (long j = 0; j < T; j++)
                for (long c = 0; c < W; c++)
                    dk[j * W + c] -= colsum[j] * k[j * W + c];
        /* the positions before `start` are no queries: their q gradient is zero */
        for (long l = 0; l < lanes; l++)
            for (long r = 0; r < start; r++)
                for (long c = 0; c < W; c++)
                    dqkv[qkv_at[l] + r * d.row + c] = 0;
        NAME(scatter)(dq, Tq, W, dqkv, qkv_at, start * d.row, d.row, lanes);
        NAME(scatter)(dk, T, W, dqkv, qkv_at, heads * W, d.row, lanes);
        NAME(scatter)(dv, T, W, dqkv, qkv_at, 2 * heads * W, d.row, lanes);
    }
    free(q);
    free(used);
    return 0;
}

int NAME(attention_backward)(const REAL *qkv, const REAL *probs, const REAL *dy, REAL *dqkv, long models, long batch,
                             long positions, long start, long heads, long width, int rbf)
{
    WITH_HEAD_WIDTH(NAME(attention_backward_body), qkv, probs, dy, dqkv, models, batch, positions, start, heads, width, rbf);
}

/* A vector of up to LANES values from src: a partial one is zero-padded, so every value sees the
   same arithmetic wherever it lies. */
static inline vec NAME(load)(const REAL *src, long count)
{
    vec v = {0};
    if (count == LANES)
        v = *(const uvec *)src;
    else
        __builtin_memcpy(&v, src, count * sizeof(REAL));
    return v;
}

static inline void NAME(store)(REAL *dst, vec v, long count)
{
    if (count == LANES)
        *(uvec *)dst = v;
    else
        __builtin_memcpy(dst, &v, count * sizeof(REAL));
}

/* GELU's tanh approximation x sigmoid(2u), 2u = x (SLOPE + CUBIC x^2), of the fc layer's output
   plus its bias, which so costs no pass of its own over these, the widest activations. The sigmoid
   is kept for the backward pass: its exp and division cost more than reading it back. */
#define GELU_SLOPE ((REAL)1.5957691216057308) /* 2 sqrt(2 / pi) */
#define GELU_CUBIC ((REAL)0.071354816272370)  /* GELU_SLOPE * 0.044715 */

/* y = GELU(a + bias) for a [K, rows, F] and model k's bias [K, F]. */
void NAME(bias_gelu_forward)(const REAL *a, const REAL *bias, REAL *y, REAL *sigmoid, long models, long rows,
                             long features)
{
    for (long m = 0; m < models; m++)
        for (long r = m * rows; r < (m + 1) * rows; r++)
            for (long at = 0; at < features; at += LANES) {
                long count = features - at < LANES ? features - at : LANES, i = r * features + at;
                vec x = NAME(load)(a + i, count) + NAME(load)(bias + m * features + at, count);
                vec s = 1 / (1 + NAME(vexp)(-(x * (GELU_SLOPE + GELU_CUBIC * x * x))));
                NAME(store)(sigmoid + i, s, count);
                NAME(store)(y + i, x * s, count);
            }
}

/* da = GELU'(a + bias) grad, with d/dx x s(2u) = s + x s (1 - s) (SLOPE + 3 CUBIC x^2), and dbias,
   its sum over each model's rows. */
void NAME(bias_gelu_backward)(const REAL *a, const REAL *bias, const REAL *sigmoid, const REAL *grad, REAL *da,
                              REAL *dbias, long models, long rows, long features)
{
    for (long m = 0; m < models; m++) {
        REAL *db = dbias + m * features;
        for (long f = 0; f < features; f++)
            db[f] = 0;
        for (long r = m * rows; r < (m + 1) * rows; r++)
            for (long at = 0; at < features; at += LANES) {
                long count = features - at < LANES ? features - at : LANES, i = r * features + at;
                vec x = NAME(load)(a + i, count) + NAME(load)(bias + m * features + at, count);
                vec s = NAME(load)(sigmoid + i, count);
                vec d = (s + s * (1 - s) * (x * (GELU_SLOPE + 3 * GELU_CUBIC * x * x))) * NAME(load)(grad + i, count);
                NAME(store)(da + i, d, count);
                NAME(store)(db + at, NAME(load)(db + at, count) + d, count);
            }
    }
}

static inline REAL NAME(lane_sum)(vec v)
{
    REAL total = 0;
    for (long l = 0; l < LANES; l++)
        total += v[l];
    return total;
}

/* LayerNorm of each row of x [K, rows, W] with model k's scale and shift [K, W]; W is a multiple of
   LANES. Keeps each row's mean and 1 / std for the backward pass. */
void NAME(layer_norm_forward)(const REAL *x, const REAL *weight, const REAL *bias, REAL *y, REAL *mean,
                              REAL *rstd, long models, long rows, long width, REAL eps)
{
    long vectors = width / LANES;
    for (long m = 0; m < models; m++) {
        const uvec *w = (const uvec *)(weight + m * width), *b = (const uvec *)(bias + m * width);
        for (long r = m * rows; r < (m + 1) * rows; r++) {
            const uvec *xr = (const uvec *)(x + r * width);
            uvec *yr = (uvec *)(y + r * width);
            vec total = {0};
            for (long v = 0; v < vectors; v++)
                total += xr[v];
            REAL mu = NAME(lane_sum)(total) / width;
            vec squares = {0};
            for (long v = 0; v < vectors; v++)
                squares += (xr[v] - mu) * (xr[v] - mu);
            REAL inv = 1 / sqrt(NAME(lane_sum)(squares) / width + eps);
            for (long v = 0; v < vectors; v++)
                yr[v] = (xr[v] - mu) * inv * w[v] + b[v];
            mean[r] = mu;
            rstd[r] = inv;
        }
    }
}

/* dx, and the scale's and shift's gradients summed over each model's rows. */
void NAME(layer_norm_backward)(const REAL *x, const REAL *weight, const REAL *mean, const REAL *rstd,
                               const REAL *grad, REAL *dx, REAL *dweight, REAL *dbias, long models,
                               long rows, long width)
{
    long vectors = width / LANES;
    for (long m = 0; m < models; m++) {
        const uvec *w = (const uvec *)(weight + m * width);
        uvec *dw = (uvec *)(dweight + m * width), *db = (uvec *)(dbias + m * width);
        for (long v = 0; v < vectors; v++)
            dw[v] = db[v] = (vec){0};
        for (long r = m * rows; r < (m + 1) * rows; r++) {
            const uvec *xr = (const uvec *)(x + r * width), *gr = (const uvec *)(grad + r * width);
            uvec *dxr = (uvec *)(dx + r * width);
            vec g_sum = {0}, gx_sum = {0};
            for (long v = 0; v < vectors; v++) {
                vec xhat = (xr[v] - mean[r]) * rstd[r], gw = gr[v] * w[v];
                dw[v] += gr[v] * xhat;
                db[v] += gr[v];
                g_sum += gw;
                gx_sum += gw * xhat;
            }
            REAL g_mean = NAME(lane_sum)(g_sum) / width, gx_mean = NAME(lane_sum)(gx_sum) / width;
            for (long v = 0; v < vectors; v++) {
                vec xhat = (xr[v] - mean[r]) * rstd[r];
                dxr[v] = (gr[v] * w[v] - g_mean - xhat * gx_mean) * rstd[r];
            }
        }
    }
}

/* One AdamW step of n values, as torch.optim.AdamW computes it: decoupled weight decay, then the
   moments' updates (the first by lerp) and the bias-corrected step. Elementwise, in vectors, with the
   last partial one zero-padded: every value gets the same operations wherever it lies. */
static void NAME(adamw_update)(REAL *param, const REAL *grad, REAL *exp_avg, REAL *exp_avg_sq, long n, REAL lr, REAL beta1,
                      REAL beta2, REAL eps, REAL weight_decay, REAL step_size, REAL bias_correction2_sqrt)
{
    for (long at = 0; at < n; at += LANES) {
        long count = n - at < LANES ? n - at : LANES;
        vec p = NAME(load)(param + at, count), g = NAME(load)(grad + at, count);
        vec m = NAME(load)(exp_avg + at, count), v = NAME(load)(exp_avg_sq + at, count);
        p = p * (1 - lr * weight_decay);
        m = m + (1 - beta1) * (g - m);
        v = v * beta2 + g * g * (1 - beta2);
        vec root = v;
        for (long l = 0; l < LANES; l++)
            root[l] = sqrt(v[l]);
        p = p - step_size * m / (root / bias_correction2_sqrt + eps);
        NAME(store)(param + at, p, count);
        NAME(store)(exp_avg + at, m, count);
        NAME(store)(exp_avg_sq + at, v, count);
    }
}

/* One AdamW step of `count` parameters: each one's step count (a float, as torch keeps it) goes up by
   one, and its bias corrections are computed in double, then rounded, as Python computes them. */
void NAME(adamw_step)(long count, REAL *const *params, REAL *const *grads, REAL *const *exp_avgs,
                      REAL *const *exp_avg_sqs, float *const *steps, const long *sizes, double lr, double beta1,
                      double beta2, double eps, double weight_decay)
{
    for (long i = 0; i < count; i++) {
        double step = *steps[i] += 1;
        NAME(adamw_update)(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], sizes[i], (REAL)lr, (REAL)beta1,
                           (REAL)beta2, (REAL)eps, (REAL)weight_decay, (REAL)(lr / (1 - pow(beta1, step))),
                           (REAL)sqrt(1 - pow(beta2, step)));
    }
}

#undef GELU_SLOPE
#undef GELU_CUBIC
#undef WITH_HEAD_WIDTH
#undef vec
#undef uvec
#undef vmask
#undef LANES
