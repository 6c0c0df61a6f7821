package dev.tessera.models.sample;

/**
 * Log-probabilities read off one row of raw logits, where nothing is sampled: a prompt's tokens, each scored by the
 * row of the position before it (what vLLM calls prompt logprobs). The log-softmax of the logits as they are, without
 * bias, penalties or temperature. One instance per thread; {@link #read} a row, then ask about it.
 */
public final class RowLogprobs {
    private final int vocabSize;
    private final float[] row;
    private long[] keys = new long[0];
    private double logSumExp;

    public RowLogprobs(int vocabSize) {
        if (vocabSize < 1) throw new IllegalArgumentException("vocabSize must be >= 1, found " + vocabSize);
        this.vocabSize = vocabSize;
        this.row = new float[vocabSize];
    }

    /** Takes logits[offset .. offset + vocabSize) as the current row. */
    public void read(float[] logits, int offset) {
        System.arraycopy(logits, offset, row, 0, vocabSize);
        float max = Float.NEGATIVE_INFINITY;
        for (float v : row) max = Math.max(max, v);
        double sum = 0;
        for (float v : row) sum += Math.exp(v - max);
        logSumExp = max + Math.log(sum);
    }

    /** The current row's log-probability of {@code token}. */
    public TokenLogprob logprob(int token) {
        if (token < 0 || token >= vocabSize)
            throw new IllegalArgumentException("token " + token + " is outside the vocabulary [0, " + vocabSize + ")");
        return new TokenLogprob(token, (float) (row[token] - logSumExp));
    }

    /** The current row's {@code k} most likely tokens, most likely first, ties to the lower id. */
    public TokenLogprob[] top(int k) {
        k = Math.min(k, vocabSize);
        if (keys.length < k) keys = new long[k];
        TopSelection.selectTop(row, vocabSize, keys, k);
        TokenLogprob[] top = new TokenLogprob[k];
        for (int i = 0; i < k; i++) {
            int token = TopSelection.id(keys[i]);
            top[i] = new TokenLogprob(token, (float) (row[token] - logSumExp));
        }
        return top;
    }
}
