package dev.tessera.models.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

class SamplingParamsTest {

    @Test
    void defaultsAreOpenAiNeutral() {
        SamplingParams p = SamplingParams.defaults();
        assertEquals(1f, p.temperature());
        assertEquals(0, p.topK());
        assertEquals(1f, p.topP());
        assertEquals(0f, p.minP());
        assertEquals(1f, p.repetitionPenalty());
        assertEquals(64, p.penaltyLastN());
        assertEquals(Map.of(), p.logitBias());
        assertNull(p.seed());
        assertEquals(0, p.numLogprobs());
        assertFalse(p.isGreedy());
        assertFalse(p.hasPenalties());
    }

    @Test
    void greedyHasTemperatureZero() {
        assertTrue(SamplingParams.greedy().isGreedy());
        assertEquals(0f, SamplingParams.greedy().temperature());
    }

    @Test
    void withersChangeOneComponent() {
        SamplingParams p = SamplingParams.defaults().withTemperature(0.5f).withTopK(40).withTopP(0.9f).withMinP(0.05f)
                .withRepetitionPenalty(1.1f).withPenaltyLastN(-1).withPresencePenalty(0.5f)
                .withFrequencyPenalty(-0.5f).withLogitBias(Map.of(3, -100f)).withSeed(7L).withNumLogprobs(5);
        assertEquals(new SamplingParams(0.5f, 40, 0.9f, 0.05f, 1.1f, -1, 0.5f, -0.5f, Map.of(3, -100f), 7L, 5), p);
        assertTrue(p.hasPenalties());
        assertFalse(p.withRepetitionPenalty(1f).withPresencePenalty(0f).withFrequencyPenalty(0f).hasPenalties());
        assertFalse(p.withPenaltyLastN(0).hasPenalties());
    }

    @Test
    void logitBiasIsCopiedAndImmutable() {
        Map<Integer, Float> bias = new HashMap<>(Map.of(1, 5f));
        SamplingParams p = SamplingParams.defaults().withLogitBias(bias);
        bias.put(2, 1f);
        assertEquals(Map.of(1, 5f), p.logitBias());
        assertThrows(UnsupportedOperationException.class, () -> p.logitBias().put(3, 1f));
        assertEquals(Map.of(), SamplingParams.defaults().withLogitBias(null).logitBias());
    }

    @Test
    void boundariesAreAccepted() {
        SamplingParams.defaults().withTemperature(2f).withTopP(0f).withMinP(1f).withPresencePenalty(-2f)
                .withFrequencyPenalty(2f).withNumLogprobs(20).withPenaltyLastN(0)
                .withLogitBias(Map.of(0, -100f, 1, 100f));
    }

    @Test
    void invalidValuesNameTheParameter() {
        SamplingParams d = SamplingParams.defaults();
        assertRejected("temperature must be in [0, 2], found 2.5", () -> d.withTemperature(2.5f));
        assertRejected("temperature must be in [0, 2], found -0.1", () -> d.withTemperature(-0.1f));
        assertRejected("temperature must be in [0, 2], found NaN", () -> d.withTemperature(Float.NaN));
        assertRejected("topK must be >= 0 (0 = off), found -1", () -> d.withTopK(-1));
        assertRejected("topP must be in [0, 1], found 1.5", () -> d.withTopP(1.5f));
        assertRejected("minP must be in [0, 1], found -0.5", () -> d.withMinP(-0.5f));
        assertRejected("repetitionPenalty must be > 0 (1 = off), found 0.0", () -> d.withRepetitionPenalty(0f));
        assertRejected("repetitionPenalty must be > 0 (1 = off), found Infinity",
                () -> d.withRepetitionPenalty(Float.POSITIVE_INFINITY));
        assertRejected("penaltyLastN must be >= -1 (-1 = whole history), found -2", () -> d.withPenaltyLastN(-2));
        assertRejected("presencePenalty must be in [-2, 2], found 3.0", () -> d.withPresencePenalty(3f));
        assertRejected("frequencyPenalty must be in [-2, 2], found -2.5", () -> d.withFrequencyPenalty(-2.5f));
        assertRejected("numLogprobs must be in [0, 20], found 21", () -> d.withNumLogprobs(21));
        assertRejected("logitBias for token 4 must be in [-100, 100], found 101.0",
                () -> d.withLogitBias(Map.of(4, 101f)));
        assertRejected("logitBias token must be >= 0, found -3", () -> d.withLogitBias(Map.of(-3, 1f)));
        Map<Integer, Float> nullValue = new HashMap<>();
        nullValue.put(9, null);
        assertRejected("logitBias for token 9 must be in [-100, 100], found null", () -> d.withLogitBias(nullValue));
    }

    private static void assertRejected(String message, Supplier<SamplingParams> build) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, build::get);
        assertEquals(message, e.getMessage());
    }
}
