package dev.tessera.models.sample;

import java.util.HashMap;
import java.util.Map;

/**
 * How one sequence picks its next token. Ranges follow the OpenAI API; neutral values switch a stage off.
 *
 * @param temperature       0 = greedy (argmax, ties go to the lowest id), otherwise 0..2
 * @param topK              keep the k most likely tokens; 0 = off
 * @param topP              nucleus: keep the smallest most-likely prefix whose probability reaches p; 1 = off,
 *                          0 keeps only the most likely token
 * @param minP              drop tokens less likely than minP times the most likely one; 0 = off
 * @param repetitionPenalty llama.cpp / CTRL style: a positive logit is divided by it, any other is multiplied by it;
 *                          1 = off
 * @param penaltyLastN      how many of the most recent history tokens (prompt and generated alike) the three
 *                          penalties look at; -1 = the whole history, 0 = no penalties
 * @param presencePenalty   OpenAI: subtracted once from every token seen in the penalty window; -2..2
 * @param frequencyPenalty  OpenAI: subtracted once per occurrence in the penalty window; -2..2
 * @param logitBias         token id to a value added to its logit, -100..100; -100 makes a token all but impossible
 *                          (it is added, not turned into -inf, as in vLLM and OpenAI)
 * @param seed              seed of the draw; null = a fresh random seed per {@link Sampler}
 * @param numLogprobs       how many most-likely alternatives {@link Sampler#top()} reports, 0..20
 */
public record SamplingParams(float temperature, int topK, float topP, float minP,
                             float repetitionPenalty, int penaltyLastN, float presencePenalty, float frequencyPenalty,
                             Map<Integer, Float> logitBias, Long seed, int numLogprobs) {

    public static final float MAX_TEMPERATURE = 2f;
    public static final float MAX_PENALTY = 2f;
    public static final float MAX_LOGIT_BIAS = 100f;
    public static final int MAX_LOGPROBS = 20;
    public static final int DEFAULT_PENALTY_LAST_N = 64;

    public SamplingParams {
        check(temperature >= 0 && temperature <= MAX_TEMPERATURE, "temperature", "in [0, 2]", temperature);
        check(topK >= 0, "topK", ">= 0 (0 = off)", topK);
        check(topP >= 0 && topP <= 1, "topP", "in [0, 1]", topP);
        check(minP >= 0 && minP <= 1, "minP", "in [0, 1]", minP);
        check(repetitionPenalty > 0 && Float.isFinite(repetitionPenalty), "repetitionPenalty", "> 0 (1 = off)",
                repetitionPenalty);
        check(penaltyLastN >= -1, "penaltyLastN", ">= -1 (-1 = whole history)", penaltyLastN);
        check(presencePenalty >= -MAX_PENALTY && presencePenalty <= MAX_PENALTY, "presencePenalty", "in [-2, 2]",
                presencePenalty);
        check(frequencyPenalty >= -MAX_PENALTY && frequencyPenalty <= MAX_PENALTY, "frequencyPenalty", "in [-2, 2]",
                frequencyPenalty);
        check(numLogprobs >= 0 && numLogprobs <= MAX_LOGPROBS, "numLogprobs", "in [0, 20]", numLogprobs);
        logitBias = copyBias(logitBias);
    }

    /** OpenAI defaults: temperature 1, nothing truncated, no penalties. */
    public static SamplingParams defaults() {
        return new SamplingParams(1f, 0, 1f, 0f, 1f, DEFAULT_PENALTY_LAST_N, 0f, 0f, Map.of(), null, 0);
    }

    /** Argmax decoding with every other stage off. */
    public static SamplingParams greedy() {
        return defaults().withTemperature(0f);
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }

    /** Whether any of the repetition, presence or frequency penalties can change a logit. */
    public boolean hasPenalties() {
        return penaltyLastN != 0 && (repetitionPenalty != 1f || presencePenalty != 0f || frequencyPenalty != 0f);
    }

    public SamplingParams withTemperature(float value) {
        return new SamplingParams(value, topK, topP, minP, repetitionPenalty, penaltyLastN, presencePenalty,
                frequencyPenalty, logitBias, seed, numLogprobs);
    }

    public SamplingParams withTopK(int value) {
        return new SamplingParams(temperature, value, topP, minP, repetitionPenalty, penaltyLastN, presencePenalty,
                frequencyPenalty, logitBias, seed, numLogprobs);
    }

    public SamplingParams withTopP(float value) {
        return new SamplingParams(temperature, topK, value, minP, repetitionPenalty, penaltyLastN, presencePenalty,
                frequencyPenalty, logitBias, seed, numLogprobs);
    }

    public SamplingParams withMinP(float value) {
        return new SamplingParams(temperature, topK, topP, value, repetitionPenalty, penaltyLastN, presencePenalty,
                frequencyPenalty, logitBias, seed, numLogprobs);
    }

    public SamplingParams withRepetitionPenalty(float value) {
        return new SamplingParams(temperature, topK, topP, minP, value, penaltyLastN, presencePenalty,
                frequencyPenalty, logitBias, seed, numLogprobs);
    }

    public SamplingParams withPenaltyLastN(int value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, value, presencePenalty,
                frequencyPenalty, logitBias, seed, numLogprobs);
    }

    public SamplingParams withPresencePenalty(float value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, penaltyLastN, value,
                frequencyPenalty, logitBias, seed, numLogprobs);
    }

    public SamplingParams withFrequencyPenalty(float value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, penaltyLastN, presencePenalty,
                value, logitBias, seed, numLogprobs);
    }

    public SamplingParams withLogitBias(Map<Integer, Float> value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, penaltyLastN, presencePenalty,
                frequencyPenalty, value, seed, numLogprobs);
    }

    public SamplingParams withSeed(Long value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, penaltyLastN, presencePenalty,
                frequencyPenalty, logitBias, value, numLogprobs);
    }

    public SamplingParams withNumLogprobs(int value) {
        return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, penaltyLastN, presencePenalty,
                frequencyPenalty, logitBias, seed, value);
    }

    private static Map<Integer, Float> copyBias(Map<Integer, Float> bias) {
        if (bias == null || bias.isEmpty()) {
            return Map.of();
        }
        // HashMap first: Map.copyOf would throw NullPointerException before we could name the bad entry.
        Map<Integer, Float> copy = new HashMap<>(bias);
        for (Map.Entry<Integer, Float> e : copy.entrySet()) {
            Integer token = e.getKey();
            Float value = e.getValue();
            if (token == null || token < 0) {
                throw new IllegalArgumentException("logitBias token must be >= 0, found " + token);
            }
            if (value == null || !(value >= -MAX_LOGIT_BIAS && value <= MAX_LOGIT_BIAS)) {
                throw new IllegalArgumentException("logitBias for token " + token + " must be in [-100, 100], found "
                        + value);
            }
        }
        return Map.copyOf(copy);
    }

    private static void check(boolean ok, String name, String expected, float found) {
        if (!ok) {
            throw new IllegalArgumentException(name + " must be " + expected + ", found " + found);
        }
    }

    private static void check(boolean ok, String name, String expected, int found) {
        if (!ok) {
            throw new IllegalArgumentException(name + " must be " + expected + ", found " + found);
        }
    }
}
