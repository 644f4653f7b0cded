/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLite reference_integer_ops::AveragePool / MaxPool):
   the window is clipped to the image, so padding never counts. */
#include "common.h"
#include "kernels.h"

typedef struct {
    int32_t y0, y1, x0, x1; /* clipped window [y0, y1) x [x0, x1), in input coordinates */
} window_t;

static window_t pool_window(const k_pool_t *p, int32_t oy, int32_t ox)
{
    const int32_t iy = oy * p->stride_h - p->pad_h, ix = ox * p->stride_w - p->pad_w;
    window_t w;
    w.y0 = iy < 0 ? 0 : iy;
    w.x0 = ix < 0 ? 0 : ix;
    w.y1 = iy + p->k_h < p->in_h ? iy + p->k_h : p->in_h;
    w.x1 = ix + p->k_w < p->in_w ? ix + p->k_w : p->in_w;
    return w;
}

void k_avg_pool2d(const k_pool_t *p, const int8_t *in, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const window_t w = pool_window(p, oy, ox);
            const int32_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
            for (int32_t c = 0; c < p->c; ++c) {
                int32_t acc = 0;
                for (int32_t y = w.y0; y < w.y1; ++y)
                    for (int32_t x = w.x0; x < w.x1; ++x) acc += in[(y * p->in_w + x) * p->c + c];
                /* round to nearest, halves away from zero; an empty window gives 0 */
                if (count > 0) acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                *out++ = (int8_t)k_clamp(acc, p->act_min, p->act_max);
            }
        }
    }
}

void k_max_pool2d(const k_pool_t *p, const int8_t *in, int8_t *out)
{
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) {
            const window_t w = pool_window(p, oy, ox);
            for (int32_t c = 0; c < p->c; ++c) {
                int32_t m = -128;
                for (int32_t y = w.y0; y < w.y1; ++y)
                    for (int32_t x = w.x0; x < w.x1; ++x) {
                        const int32_t v = in[(y * p->in_w + x) * p->c + c];
                        if (v > m) m = v;
                    }
                *out++ = (int8_t)k_clamp(m, p->act_min, p->act_max);
            }
        }
    }
}
