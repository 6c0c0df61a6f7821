package dev.tessera.scheduler.parallel;

import dev.tessera.models.arch.ModelConfig;

import java.util.Arrays;

/**
 * Which part of every layer each device computes (TPI-LLM, arXiv 2410.00531 §3.1): whole KV-head groups (their
 * query heads, the matching attn_output columns) and a range of FFN columns (ffn_gate/ffn_up rows, ffn_down columns),
 * both in proportion to the device weights. Every layer is split the same way. A device may get no heads or no FFN
 * columns when it is much weaker than the rest; it then contributes zeros to that allreduce.
 *
 * @param kvHeadStart device d owns KV heads [kvHeadStart[d], kvHeadStart[d + 1])
 * @param ffnStart device d owns FFN columns [ffnStart[d], ffnStart[d + 1])
 */
public record ShardPlan(int[] weights, int numHeads, int numKvHeads, int headDim, int hiddenDim,
                        int[] kvHeadStart, int[] ffnStart) {

    public int numDevices() { return weights.length; }

    public int group() { return numHeads / numKvHeads; }

    public int numKvHeads(int device) { return kvHeadStart[device + 1] - kvHeadStart[device]; }

    public int numHeads(int device) { return numKvHeads(device) * group(); }

    /** First query head of the device; its heads are contiguous. */
    public int headStart(int device) { return kvHeadStart[device] * group(); }

    public int ffnColumns(int device) { return ffnStart[device + 1] - ffnStart[device]; }

    /**
     * Splits a model over devices of the given relative speeds.
     *
     * @param ffnGranularity FFN columns are split in multiples of this (the block size of ffn_down's type)
     * @param headGranularity the query width of one KV group must be a multiple of this (attn_output's block size)
     */
    public static ShardPlan of(ModelConfig c, int[] weights, int ffnGranularity, int headGranularity) {
        if (weights.length < 1) throw new IllegalArgumentException("no devices");
        for (int w : weights) if (w < 1) throw new IllegalArgumentException("device weights must be positive, got " + Arrays.toString(weights));
        int groupWidth = c.numHeads() / c.numKvHeads() * c.headDim();
        if (groupWidth % headGranularity != 0)
            throw new IllegalArgumentException("one KV group is " + groupWidth + " attn_output columns, not a multiple of its block size " + headGranularity + "; re-quantize attn_output or use F32/F16");
        if (c.hiddenDim() % ffnGranularity != 0)
            throw new IllegalArgumentException("feed_forward_length " + c.hiddenDim() + " is not a multiple of ffn_down's block size " + ffnGranularity);
        int[] kv = split(c.numKvHeads(), weights);
        int[] ffnUnits = split(c.hiddenDim() / ffnGranularity, weights);
        int[] ffn = new int[ffnUnits.length];
        for (int i = 0; i < ffn.length; i++) ffn[i] = ffnUnits[i] * ffnGranularity;
        return new ShardPlan(weights.clone(), c.numHeads(), c.numKvHeads(), c.headDim(), c.hiddenDim(), kv, ffn);
    }

    /** Boundaries of {@code units} split in proportion to weights, by largest remainder (ties to the lower device). */
    static int[] split(int units, int[] weights) {
        long total = 0;
        for (int w : weights) total += w;
        int n = weights.length;
        int[] count = new int[n];
        long[] remainder = new long[n];
        int assigned = 0;
        for (int d = 0; d < n; d++) {
            long exact = (long) units * weights[d];
            count[d] = (int) (exact / total);
            remainder[d] = exact % total;
            assigned += count[d];
        }
        for (; assigned < units; assigned++) {
            int best = 0;
            for (int d = 1; d < n; d++) if (remainder[d] > remainder[best]) best = d;
            count[best]++;
            remainder[best] = -1;
        }
        int[] start = new int[n + 1];
        for (int d = 0; d < n; d++) start[d + 1] = start[d] + count[d];
        return start;
    }

    /** A stable one-line description, stored in shard files and compared at the handshake. */
    public String describe() {
        return "weights=" + join(weights) + ";heads=" + numHeads + "/" + numKvHeads + "x" + headDim + ";ffn=" + hiddenDim
                + ";kv=" + join(kvHeadStart) + ";cols=" + join(ffnStart);
    }

    private static String join(int[] v) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < v.length; i++) sb.append(i > 0 ? "," : "").append(v[i]);
        return sb.toString();
    }

    /** Parses {@code 1,1,2}; a malformed list is an IllegalArgumentException with a one-line message. */
    public static int[] parseWeights(String s) {
        String[] parts = s.split(",");
        int[] w = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            try {
                w[i] = Integer.parseInt(parts[i].trim());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("device weights must be positive integers like 1,1,2, got '" + s + "'");
            }
            if (w[i] < 1 || w[i] > 1000) throw new IllegalArgumentException("device weights must be between 1 and 1000, got '" + s + "'");
        }
        return w;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof ShardPlan p && p.describe().equals(describe());
    }

    @Override
    public int hashCode() { return describe().hashCode(); }

    @Override
    public String toString() { return describe(); }
}
