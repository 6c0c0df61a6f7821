package dev.tessera.models.quant;

import static dev.tessera.models.quant.Quantizer.nearestInt;

/**
 * The per-sub-block scale searches of ggml's K-quant reference quantizers: make_qkx2_quants (scale and min, used by
 * Q4_K and Q5_K) and make_qx_quants (symmetric scale, used by Q6_K). Float operations keep ggml's order, so results
 * match it wherever the C compiler did not fuse multiply-adds.
 */
final class KQuantSearch {
    private KQuantSearch() {}

    /**
     * Fits x[xo .. xo+n) ≈ scale * L - min with L in [0, nmax], minimizing the weighted squared error over a sweep of
     * nstep + 1 candidate inverse scales (rmin + rdelta * is + nmax) / (max - min). Writes L[lo .. lo+n), stores the
     * (non-negative) min into mins[minIndex] and returns the scale. laux is n entries of scratch.
     */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xo, float[] weights, int[] L, int lo,
                                float[] mins, int minIndex, int[] laux, float rmin, float rdelta, int nstep) {
        float min = x[xo], max = x[xo];
        float sumW = weights[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            float v = x[xo + i];
            if (v < min) min = v;
            if (v > max) max = v;
            float w = weights[i];
            sumW += w;
            sumX += w * v;
        }
        if (min > 0) min = 0;
        if (max == min) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            mins[minIndex] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
            L[lo + i] = l;
            float diff = scale * l + min - x[xo + i];
            bestError += weights[i] * (diff * diff);
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.max(0, Math.min(nmax, nearestInt(iscale * (x[xo + i] - min))));
                laux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[xo + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * laux[i] + thisMin - x[xo + i];
                    error += weights[i] * (diff * diff);
                }
                if (error < bestError) {
                    System.arraycopy(laux, 0, L, lo, n);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        mins[minIndex] = -min;
        return scale;
    }

    /**
     * Fits x[xo .. xo+n) ≈ scale * (L - nmax) with L - nmax in [-nmax, nmax - 1], weighting each value by x² and
     * trying 19 inverse scales around -nmax / max (ggml make_qx_quants with rmse_type 1). Writes L[lo .. lo+n) and
     * returns the scale; an all-(near-)zero group gets scale 0 and L = 0.
     */
    static float makeQxQuants(int n, int nmax, float[] x, int xo, int[] L, int lo) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) { amax = ax; max = x[xo + i]; }
        }
        if (amax < 1e-15f) {
            for (int i = 0; i < n; i++) L[lo + i] = 0;
            return 0f;
        }
        float iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xo + i];
            int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
            L[lo + i] = l + nmax;
            float w = v * v;
            sumLX += w * v * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0f;
        float best = scale * sumLX;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumLX = 0;
            sumL2 = 0;
            for (int i = 0; i < n; i++) {
                float v = x[xo + i];
                int l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * v)));
                float w = v * v;
                sumLX += w * v * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2) {
                for (int i = 0; i < n; i++) L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(iscale * x[xo + i])));
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }
}
