package dev.tessera.models.sample;

import java.util.Map;
import java.util.TreeMap;

/**
 * The logit-changing stages that run before any truncation: logit bias, then the repetition, frequency and presence
 * penalties over the last {@code penaltyLastN} history tokens, in place.
 *
 * <p>Per distinct token t seen c times in the window (llama.cpp {@code llama_sampler_penalties_apply}):
 * {@code l = l > 0 ? l / repetition : l * repetition; l -= c * frequency + presence}. The window covers prompt and
 * generated tokens alike, as in llama.cpp; vLLM limits presence and frequency to generated tokens.
 */
final class LogitPenalties {

    private final int vocabSize;
    private final int[] biasIds;
    private final float[] biasValues;
    private final boolean active;
    private final float repetition;
    private final float presence;
    private final float frequency;
    private final int lastN;
    private final int[] counts;   // [vocabSize], all zero between calls
    private final int[] distinct; // ids of the window, each once

    LogitPenalties(SamplingParams params, int vocabSize) {
        this.vocabSize = vocabSize;
        // Sorted by id so that the order of additions, and thus the rounding, never depends on a hash order.
        Map<Integer, Float> bias = new TreeMap<>(params.logitBias());
        biasIds = new int[bias.size()];
        biasValues = new float[bias.size()];
        int i = 0;
        for (Map.Entry<Integer, Float> e : bias.entrySet()) {
            if (e.getKey() >= vocabSize) {
                throw new IllegalArgumentException("logitBias token " + e.getKey() + " is outside the vocabulary [0, "
                        + vocabSize + ")");
            }
            biasIds[i] = e.getKey();
            biasValues[i] = e.getValue();
            i++;
        }
        active = params.hasPenalties();
        repetition = params.repetitionPenalty();
        presence = params.presencePenalty();
        frequency = params.frequencyPenalty();
        lastN = params.penaltyLastN();
        counts = active ? new int[vocabSize] : null;
        distinct = active ? new int[lastN < 0 ? vocabSize : Math.min(vocabSize, lastN)] : null;
    }

    /** Applies bias and penalties to logits[0..vocabSize); history[0..historyLength) is prompt plus generated ids. */
    void apply(float[] logits, int[] history, int historyLength) {
        for (int i = 0; i < biasIds.length; i++) {
            logits[biasIds[i]] += biasValues[i];
        }
        if (!active) {
            return;
        }
        int start = lastN < 0 ? 0 : Math.max(0, historyLength - lastN);
        int numDistinct = 0;
        for (int i = start; i < historyLength; i++) {
            int token = history[i];
            if (token < 0 || token >= vocabSize) {
                clear(numDistinct);
                throw new IllegalArgumentException("history[" + i + "] = " + token + " is outside the vocabulary [0, "
                        + vocabSize + ")");
            }
            if (counts[token]++ == 0) {
                distinct[numDistinct++] = token;
            }
        }
        for (int i = 0; i < numDistinct; i++) {
            int token = distinct[i];
            int count = counts[token];
            counts[token] = 0;
            float logit = logits[token];
            if (repetition != 1f) {
                logit = logit > 0 ? logit / repetition : logit * repetition;
            }
            logits[token] = logit - (count * frequency + presence);
        }
    }

    private void clear(int numDistinct) {
        for (int i = 0; i < numDistinct; i++) {
            counts[distinct[i]] = 0;
        }
    }
}
