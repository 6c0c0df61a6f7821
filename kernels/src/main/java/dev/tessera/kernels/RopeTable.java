package dev.tessera.kernels;

/**
 * Rotary position embedding parameters. {@code invFreq[i]} is the angle per position of pair i (ropeDim/2 pairs),
 * already including frequency factors (Llama-3 scaling) and linear position scaling.
 * Normal (Llama) rope rotates adjacent pairs (x[2i], x[2i+1]); NeoX rope rotates (x[i], x[i + ropeDim/2]).
 */
public record RopeTable(int ropeDim, float[] invFreq, boolean neox) {

    /**
     * @param freqFactors divides each pair's frequency (GGUF rope_freqs.weight), or null
     * @param positionScale linear scaling: angles use position / positionScale
     */
    public static RopeTable of(int ropeDim, double freqBase, float[] freqFactors, double positionScale, boolean neox) {
        float[] inv = new float[ropeDim / 2];
        for (int i = 0; i < inv.length; i++) {
            double f = Math.pow(freqBase, -2.0 * i / ropeDim) / positionScale;
            if (freqFactors != null) f /= freqFactors[i];
            inv[i] = (float) f;
        }
        return new RopeTable(ropeDim, inv, neox);
    }

    /** Frequency factors of Llama-3.1 rope scaling, for files that give the parameters instead of the tensor. */
    public static float[] llama3Factors(int ropeDim, double freqBase, double factor, double lowFreqFactor,
                                        double highFreqFactor, double originalContext) {
        float[] out = new float[ropeDim / 2];
        double lowWavelen = originalContext / lowFreqFactor, highWavelen = originalContext / highFreqFactor;
        for (int i = 0; i < out.length; i++) {
            double freq = Math.pow(freqBase, -2.0 * i / ropeDim);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) out[i] = 1f;
            else if (wavelen > lowWavelen) out[i] = (float) factor;
            else {
                double smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                out[i] = (float) (1.0 / ((1 - smooth) / factor + smooth));
            }
        }
        return out;
    }
}
