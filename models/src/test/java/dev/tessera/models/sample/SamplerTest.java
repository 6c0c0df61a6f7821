package dev.tessera.models.sample;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class SamplerTest {

    private static final int[] NO_HISTORY = new int[0];

    // ---- determinism ------------------------------------------------------------------------------------------

    @Test
    void generatorMatchesSplitMix64ReferenceOutputs() {
        // Vigna's splitmix64.c seeded with 0.
        SplitMix64 random = new SplitMix64(0);
        assertEquals(0xE220A8397B1DCDAFL, random.nextLong());
        assertEquals(0x6E789E6AA1B965F4L, random.nextLong());
        assertEquals(0x06C45D188009454FL, random.nextLong());
    }

    @Test
    void sameSeedGivesSameSequenceAndDifferentSeedDoesNot() {
        float[] logits = gaussianLogits(1000, 2f, 1);
        int[] a = draws(SamplingParams.defaults().withSeed(42L), logits, 100);
        int[] b = draws(SamplingParams.defaults().withSeed(42L), logits, 100);
        int[] c = draws(SamplingParams.defaults().withSeed(43L), logits, 100);
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, c));
        assertTrue(Arrays.stream(a).distinct().count() > 10, "draws should spread over the vocabulary");
    }

    @Test
    void seededSequenceIsPinned() {
        // Pins the whole pipeline (softmax, cumulative walk, generator) so a change that alters the output of an
        // existing seed shows up here. The expected tokens come from an independent Python SplitMix64 + softmax.
        float[] logits = {0f, 1f, 2f, 0.5f, -1f, 1.5f};
        int[] got = draws(SamplingParams.defaults().withSeed(1234L), logits, 16);
        assertArrayEquals(PINNED_SEQUENCE, got, Arrays.toString(got));
    }

    private static final int[] PINNED_SEQUENCE = {4, 2, 1, 2, 3, 3, 2, 2, 2, 5, 1, 2, 5, 2, 5, 5};

    @Test
    void unseededSamplerReportsItsSeedAndReplaysWithIt() {
        float[] logits = gaussianLogits(500, 2f, 2);
        Sampler unseeded = new Sampler(SamplingParams.defaults(), logits.length);
        int[] first = new int[50];
        for (int i = 0; i < first.length; i++) {
            first[i] = unseeded.sample(logits);
        }
        assertArrayEquals(first, draws(SamplingParams.defaults().withSeed(unseeded.seed()), logits, 50));
    }

    // ---- greedy and truncation --------------------------------------------------------------------------------

    @Test
    void greedyPicksArgmaxAndLowestIdOnTies() {
        Sampler sampler = new Sampler(SamplingParams.greedy(), 6);
        assertEquals(3, sampler.sample(new float[] {0f, 1f, -2f, 5f, 4.9f, 1f}));
        assertEquals(1, sampler.sample(new float[] {0f, 7f, 7f, -1f, 7f, 1f}));
        assertEquals(5, sampler.sample(new float[] {-9f, -8f, -7f, -6f, -5f, -4f}));
    }

    @Test
    void sampleDoesNotChangeTheCallersLogits() {
        float[] logits = gaussianLogits(1000, 1f, 3);
        float[] before = logits.clone();
        SamplingParams params = SamplingParams.defaults().withSeed(1L).withTopK(10).withRepetitionPenalty(1.3f)
                .withPresencePenalty(1f).withLogitBias(Map.of(0, -100f));
        new Sampler(params, logits.length).sample(logits, new int[] {1, 2, 3}, 3);
        new Sampler(params.withTopK(0).withTopP(0.5f), logits.length).sample(logits, new int[] {1, 2, 3}, 3);
        assertArrayEquals(before, logits);
    }

    @Test
    void topKOneEqualsGreedyOnALargeVocabulary() {
        int vocabSize = 152_064;
        Sampler greedy = new Sampler(SamplingParams.greedy(), vocabSize);
        for (int trial = 0; trial < 5; trial++) {
            float[] logits = gaussianLogits(vocabSize, 3f, 100 + trial);
            Sampler topOne = new Sampler(SamplingParams.defaults().withTemperature(1.5f).withTopK(1)
                    .withSeed((long) trial), vocabSize);
            assertEquals(greedy.sample(logits), topOne.sample(logits));
            assertEquals(argmax(logits), greedy.sample(logits));
        }
    }

    @Test
    void topKDrawsOnlyFromTheKLargest() {
        int vocabSize = 20_000;
        float[] logits = gaussianLogits(vocabSize, 0.5f, 4); // flat: without top-k nearly any token could come
        Set<Integer> allowed = new HashSet<>();
        for (int id : rankDescending(logits, 8)) {
            allowed.add(id);
        }
        Sampler sampler = new Sampler(SamplingParams.defaults().withTopK(8).withSeed(5L), vocabSize);
        Set<Integer> seen = new HashSet<>();
        for (int i = 0; i < 2000; i++) {
            seen.add(sampler.sample(logits));
        }
        assertEquals(allowed, seen);
    }

    @Test
    void tinyTopPGivesArgmaxWithAndWithoutTopK() {
        int vocabSize = 50_000;
        for (int trial = 0; trial < 5; trial++) {
            float[] logits = gaussianLogits(vocabSize, 1f, 200 + trial);
            int expected = argmax(logits);
            for (SamplingParams params : new SamplingParams[] {
                    SamplingParams.defaults().withTopP(1e-6f).withSeed((long) trial),
                    SamplingParams.defaults().withTopP(0f).withSeed((long) trial),
                    SamplingParams.defaults().withTopP(1e-6f).withTopK(50).withSeed((long) trial)}) {
                Sampler sampler = new Sampler(params, vocabSize);
                for (int i = 0; i < 20; i++) {
                    assertEquals(expected, sampler.sample(logits), params.toString());
                }
            }
        }
    }

    @Test
    void topPWithoutTopKFindsLargeNucleiExactly() {
        // Flat logits make the 0.9 nucleus thousands of tokens wide, spread over many buckets; every draw must lie
        // inside the nucleus computed by a full sort, and the deep end of the nucleus must be reachable.
        int vocabSize = 20_000;
        float[] logits = gaussianLogits(vocabSize, 1f, 6);
        float temperature = 0.8f;
        float topP = 0.9f;
        Integer[] order = rankDescending(logits, vocabSize);
        Set<Integer> nucleus = nucleus(logits, temperature, 0, topP);
        assertTrue(nucleus.size() > 2000, "nucleus of " + nucleus.size() + " is too small to test widening");
        Sampler sampler = new Sampler(SamplingParams.defaults().withTemperature(temperature).withTopP(topP)
                .withSeed(9L), vocabSize);
        Map<Integer, Integer> rank = new HashMap<>();
        for (int r = 0; r < order.length; r++) {
            rank.put(order[r], r);
        }
        int maxRank = 0;
        for (int i = 0; i < 2000; i++) {
            int token = sampler.sample(logits);
            assertTrue(nucleus.contains(token), "token " + token + " of rank " + rank.get(token) + " is outside");
            maxRank = Math.max(maxRank, rank.get(token));
        }
        assertTrue(maxRank > 0.8 * nucleus.size(), "deep nucleus ranks never drawn: max rank " + maxRank);
    }

    @Test
    void topPDrawsExactlyTheNucleus() {
        // Close logits put neighbours in adjacent buckets; both the bucketed path (no top-k) and the sorted path
        // (top-k) must draw every token of the nucleus a full sort gives, and nothing else. After top-k, top-p cuts
        // the renormalized top-k distribution (llama.cpp, vLLM).
        int vocabSize = 40;
        for (int trial = 0; trial < 8; trial++) {
            float[] logits = gaussianLogits(vocabSize, 0.3f, 300 + trial);
            float topP = 0.3f + 0.08f * trial;
            float temperature = 0.6f + 0.1f * trial;
            for (int topK : new int[] {0, vocabSize - 1, 25}) {
                Set<Integer> nucleus = nucleus(logits, temperature, topK, topP);
                SamplingParams params = SamplingParams.defaults().withTemperature(temperature).withTopP(topP)
                        .withTopK(topK).withSeed((long) trial);
                Set<Integer> seen = new HashSet<>();
                for (int token : draws(params, logits, 3000)) {
                    seen.add(token);
                }
                assertEquals(nucleus, seen, params.toString());
            }
        }
    }

    @Test
    void topPOnEqualLogitsKeepsTheLowestIds() {
        // All tokens share one bucket, which then is sorted whole; ties go to the lower id.
        int[] counts = histogram(SamplingParams.defaults().withTopP(0.45f).withSeed(10L), new float[10], 5000);
        for (int i = 0; i < 10; i++) {
            assertEquals(i < 5, counts[i] > 0, "token " + i + ": " + Arrays.toString(counts));
        }
    }

    @Test
    void topPRenormalizesOverTheNucleus() {
        // Probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.7 keeps the first two, drawn 5:3.
        float[] logits = logs(0.5, 0.3, 0.15, 0.05);
        int[] counts = histogram(SamplingParams.defaults().withTopP(0.7f).withSeed(11L), logits, 20_000);
        assertEquals(0, counts[2] + counts[3]);
        assertChiSquareFits(counts, new double[] {0.625, 0.375, 0, 0});
    }

    @Test
    void minPExcludesUnlikelyTokens() {
        // Probabilities 0.5, 0.3, 0.15, 0.05: min-p 0.2 cuts below 0.1, i.e. only the last token.
        float[] logits = logs(0.5, 0.3, 0.15, 0.05);
        int[] counts = histogram(SamplingParams.defaults().withMinP(0.2f).withSeed(12L), logits, 20_000);
        assertEquals(0, counts[3]);
        assertChiSquareFits(counts, new double[] {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
        // min-p 0.35 also cuts 0.15.
        int[] tighter = histogram(SamplingParams.defaults().withMinP(0.35f).withSeed(12L), logits, 5_000);
        assertEquals(0, tighter[2] + tighter[3]);
    }

    @Test
    void temperatureDrawsMatchTheTemperedSoftmax() {
        float[] logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.2f};
        for (float temperature : new float[] {0.5f, 1f, 1.7f}) {
            int[] counts = histogram(SamplingParams.defaults().withTemperature(temperature).withSeed(13L), logits,
                    30_000);
            assertChiSquareFits(counts, softmax(logits, temperature));
        }
    }

    @Test
    void chiSquareCheckRejectsTheWrongTemperature() {
        // Guards the statistical tests: they must be able to tell temperature 1 from 0.7.
        float[] logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, 1.2f};
        int[] counts = histogram(SamplingParams.defaults().withTemperature(0.7f).withSeed(13L), logits, 30_000);
        assertTrue(chiSquare(counts, softmax(logits, 1f)) > CHI_SQUARE_CRITICAL[logits.length - 1]);
    }

    // ---- bias and penalties -----------------------------------------------------------------------------------

    @Test
    void logitBiasMinusHundredBansAndPlusHundredForces() {
        float[] logits = new float[50]; // uniform
        int[] counts = histogram(SamplingParams.defaults().withLogitBias(Map.of(7, -100f)).withSeed(3L), logits,
                20_000);
        assertEquals(0, counts[7]);
        assertEquals(49, Arrays.stream(counts).filter(c -> c > 0).count());
        int[] forced = histogram(SamplingParams.defaults().withLogitBias(Map.of(31, 100f)).withSeed(3L), logits,
                1000);
        assertEquals(1000, forced[31]);
        logits[7] = 5f;
        assertEquals(8, new Sampler(SamplingParams.greedy().withLogitBias(Map.of(7, -100f, 8, 0.5f)), 50)
                .sample(logits));
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeLogits() {
        float[] logits = {0f, 2f, -1f, 3f, 0.5f, 0f};
        int[] history = {1, 2, 1, 5};
        float[] got = processedLogits(SamplingParams.greedy().withRepetitionPenalty(2f), logits, history);
        // Token 1 seen twice is penalised once; 0 and 5 have logit 0 (not > 0) and are multiplied: 0 stays 0.
        assertArrayEquals(new float[] {0f, 1f, -2f, 3f, 0.5f, 0f}, got, 1e-5f);
    }

    @Test
    void presenceAndFrequencyPenaltiesFollowOpenAi() {
        float[] logits = {0f, 2f, -1f, 3f, 0.5f, 1f};
        int[] history = {1, 2, 1, 1, 4};
        SamplingParams params = SamplingParams.greedy().withPresencePenalty(0.25f).withFrequencyPenalty(0.5f);
        float[] got = processedLogits(params, logits, history);
        // logit -= count * 0.5 + 0.25 for each seen token: 1 (x3), 2 (x1), 4 (x1).
        assertArrayEquals(new float[] {0f, 2f - 1.75f, -1f - 0.75f, 3f, 0.5f - 0.75f, 1f}, got, 1e-5f);
    }

    @Test
    void allPenaltiesCombineInLlamaCppOrder() {
        float[] logits = {0f, 2f, -1f, 3f};
        int[] history = {3, 1, 1, 1, 2};
        SamplingParams params = SamplingParams.greedy().withRepetitionPenalty(1.5f).withPresencePenalty(0.25f)
                .withFrequencyPenalty(0.5f);
        float[] got = processedLogits(params, logits, history);
        float expected1 = 2f / 1.5f - (3 * 0.5f + 0.25f);
        float expected2 = -1f * 1.5f - (0.5f + 0.25f);
        float expected3 = 3f / 1.5f - (0.5f + 0.25f);
        assertArrayEquals(new float[] {0f, expected1, expected2, expected3}, got, 1e-5f);
    }

    @Test
    void penaltiesOnlySeeTheLastNTokens() {
        float[] logits = {0f, 2f, 2f, 2f, 2f, 2f};
        int[] history = {5, 5, 1, 2, 3, 99};
        int length = 5; // 99 is past the end and must be ignored
        SamplingParams params = SamplingParams.greedy().withPresencePenalty(1f).withFrequencyPenalty(0.5f);
        assertArrayEquals(new float[] {0f, 0.5f, 0.5f, 0.5f, 2f, 2f},
                processedLogits(params.withPenaltyLastN(3), logits, history, length), 1e-5f);
        assertArrayEquals(new float[] {0f, 0.5f, 0.5f, 0.5f, 2f, 0f},
                processedLogits(params.withPenaltyLastN(-1), logits, history, length), 1e-5f);
        assertArrayEquals(new float[] {0f, 2f, 2f, 2f, 2f, 2f},
                processedLogits(params.withPenaltyLastN(0), logits, history, length), 1e-5f);
    }

    @Test
    void penaltiesStartFreshOnEveryCall() {
        float[] logits = {0f, 2f, 2f};
        Sampler sampler = new Sampler(SamplingParams.greedy().withFrequencyPenalty(1f).withNumLogprobs(3), 3);
        sampler.sample(logits, new int[] {1, 1}, 2);
        sampler.sample(logits, new int[] {2}, 1);
        // Token 1's counts from the first call must not leak into the second.
        assertEquals(1, sampler.chosen().token());
        assertEquals(sampler.logprob(1) - 1f, sampler.logprob(2), 1e-5f);
    }

    // ---- log-probabilities ------------------------------------------------------------------------------------

    @Test
    void logprobsAreTheModelsLogSoftmaxBeforeTemperature() {
        int vocabSize = 1000;
        float[] logits = gaussianLogits(vocabSize, 3f, 7);
        Sampler sampler = new Sampler(SamplingParams.defaults().withTemperature(0.3f).withTopK(5).withNumLogprobs(20)
                .withSeed(2L), vocabSize);
        int token = sampler.sample(logits);
        double[] expected = softmax(logits, 1f);
        double total = 0;
        for (int i = 0; i < vocabSize; i++) {
            assertEquals(Math.log(expected[i]), sampler.logprob(i), 1e-4);
            total += Math.exp(sampler.logprob(i));
        }
        assertEquals(1.0, total, 1e-4);
        assertEquals(new TokenLogprob(token, sampler.logprob(token)), sampler.chosen());

        TokenLogprob[] top = sampler.top();
        Integer[] order = rankDescending(logits, 20);
        assertEquals(20, top.length);
        for (int i = 0; i < 20; i++) {
            assertEquals(order[i], top[i].token());
            assertEquals(Math.log(expected[order[i]]), top[i].logprob(), 1e-4);
        }
    }

    @Test
    void logprobsSeeBiasAndPenalties() {
        float[] logits = {1f, 1f, 1f, 1f};
        Sampler sampler = new Sampler(SamplingParams.greedy().withLogitBias(Map.of(2, 1f)).withNumLogprobs(2), 4);
        assertEquals(2, sampler.sample(logits));
        double lse = Math.log(3 * Math.E + Math.exp(2));
        assertEquals(2 - lse, sampler.chosen().logprob(), 1e-5);
        assertEquals(new TokenLogprob(0, (float) (1 - lse)), sampler.top()[1]);
    }

    @Test
    void noLogprobsRequestedGivesAnEmptyTop() {
        Sampler sampler = new Sampler(SamplingParams.greedy(), 3);
        sampler.sample(new float[] {0f, 1f, 2f});
        assertEquals(0, sampler.top().length);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new Sampler(SamplingParams.greedy(), 3).chosen());
        assertEquals("no token sampled yet: call sample() first", e.getMessage());
    }

    // ---- bad input --------------------------------------------------------------------------------------------

    @Test
    void badInputIsRejectedWithItsName() {
        Sampler sampler = new Sampler(SamplingParams.defaults().withPresencePenalty(1f), 4);
        assertMessage("logits has 3 entries, expected vocabSize 4", () -> sampler.sample(new float[3]));
        assertMessage("historyLength must be in [0, 2], found 3",
                () -> sampler.sample(new float[4], new int[2], 3));
        assertMessage("history[1] = 4 is outside the vocabulary [0, 4)",
                () -> sampler.sample(new float[4], new int[] {0, 4}, 2));
        // After the rejected call the penalty counts must be clean again.
        Sampler greedy = new Sampler(SamplingParams.greedy().withFrequencyPenalty(1f), 2);
        assertThrows(IllegalArgumentException.class, () -> greedy.sample(new float[2], new int[] {0, 0, 7}, 3));
        assertEquals(0, greedy.sample(new float[] {1f, 0.5f}, new int[] {1}, 1));
        assertEquals(1, greedy.sample(new float[] {1f, 0.5f}, new int[] {0}, 1));

        assertMessage("logitBias token 9 is outside the vocabulary [0, 4)",
                () -> new Sampler(SamplingParams.defaults().withLogitBias(Map.of(9, 1f)), 4));
        assertMessage("vocabSize must be >= 1, found 0", () -> new Sampler(SamplingParams.defaults(), 0));
        float[] banned = {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
        assertMessage("no token can be sampled: all 2 logits are -inf or NaN after bias and penalties",
                () -> new Sampler(SamplingParams.defaults(), 2).sample(banned));
        assertMessage("no token can be sampled: all 2 logits are -inf or NaN after bias and penalties",
                () -> new Sampler(SamplingParams.greedy(), 2).sample(banned));
    }

    // ---- helpers ----------------------------------------------------------------------------------------------

    /** Critical chi-square values at significance 0.001 for 1..8 degrees of freedom. */
    private static final double[] CHI_SQUARE_CRITICAL = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12};

    private static void assertChiSquareFits(int[] counts, double[] expected) {
        int degrees = (int) Arrays.stream(expected).filter(p -> p > 0).count() - 1;
        double statistic = chiSquare(counts, expected);
        assertTrue(statistic < CHI_SQUARE_CRITICAL[degrees], "chi-square " + statistic + " with " + degrees
                + " degrees of freedom; counts " + Arrays.toString(counts) + ", expected " + Arrays.toString(expected));
    }

    private static double chiSquare(int[] counts, double[] expected) {
        int n = Arrays.stream(counts).sum();
        double statistic = 0;
        for (int i = 0; i < counts.length; i++) {
            if (expected[i] > 0) {
                double e = n * expected[i];
                statistic += (counts[i] - e) * (counts[i] - e) / e;
            }
        }
        return statistic;
    }

    /** Logits after bias and penalties, recovered from the logprobs: logprob differences are logit differences. */
    private static float[] processedLogits(SamplingParams params, float[] logits, int[] history) {
        return processedLogits(params, logits, history, history.length);
    }

    private static float[] processedLogits(SamplingParams params, float[] logits, int[] history, int length) {
        assertTrue(logits[0] == 0f && !Arrays.stream(history, 0, length).anyMatch(t -> t == 0),
                "token 0 is the unpenalised reference with logit 0");
        Sampler sampler = new Sampler(params, logits.length);
        sampler.sample(logits, history, length);
        float[] got = new float[logits.length];
        for (int i = 0; i < got.length; i++) {
            got[i] = sampler.logprob(i) - sampler.logprob(0);
        }
        return got;
    }

    private static int[] draws(SamplingParams params, float[] logits, int count) {
        Sampler sampler = new Sampler(params, logits.length);
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = sampler.sample(logits, NO_HISTORY, 0);
        }
        return out;
    }

    private static int[] histogram(SamplingParams params, float[] logits, int count) {
        int[] counts = new int[logits.length];
        for (int token : draws(params, logits, count)) {
            counts[token]++;
        }
        return counts;
    }

    private static float[] gaussianLogits(int vocabSize, float scale, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] logits = new float[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            logits[i] = (float) (scale * random.nextGaussian());
        }
        return logits;
    }

    private static float[] logs(double... probabilities) {
        float[] logits = new float[probabilities.length];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.log(probabilities[i]);
        }
        return logits;
    }

    private static double[] softmax(float[] logits, float temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float l : logits) {
            max = Math.max(max, l);
        }
        double[] p = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            p[i] = Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        for (int i = 0; i < p.length; i++) {
            p[i] /= sum;
        }
        return p;
    }

    private static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }

    /** Top-p's nucleus by full sort, over the top-k survivors (topK 0 = all) renormalized. */
    private static Set<Integer> nucleus(float[] logits, float temperature, int topK, float topP) {
        Integer[] kept = rankDescending(logits, topK > 0 ? topK : logits.length);
        float[] keptLogits = new float[kept.length];
        for (int i = 0; i < kept.length; i++) {
            keptLogits[i] = logits[kept[i]];
        }
        double[] p = softmax(keptLogits, temperature);
        Set<Integer> nucleus = new HashSet<>();
        double cumulative = 0;
        for (int i = 0; i < kept.length; i++) {
            nucleus.add(kept[i]);
            cumulative += p[i];
            if (cumulative >= topP) {
                break;
            }
        }
        return nucleus;
    }

    /** The first count ids by descending logit, ties to the lower id, by a full sort. */
    private static Integer[] rankDescending(float[] logits, int count) {
        return IntStream.range(0, logits.length).boxed()
                .sorted(Comparator.<Integer>comparingDouble(i -> -logits[i]).thenComparingInt(i -> i))
                .limit(count).toArray(Integer[]::new);
    }

    private static void assertMessage(String message, Executable call) {
        assertEquals(message, assertThrows(IllegalArgumentException.class, call).getMessage());
    }
}
