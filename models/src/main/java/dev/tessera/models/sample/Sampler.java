package dev.tessera.models.sample;

import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Picks the next token of one sequence from the model's logits. Speaks token ids and logits only.
 *
 * <p>Stages, in llama.cpp's order: logit bias → repetition/frequency/presence penalties → (temperature 0: argmax,
 * ties to the lowest id) → top-k → temperature → softmax → top-p → min-p → one draw. Temperature comes before top-p
 * and min-p, so they cut the tempered distribution (as in vLLM). Top-p keeps the smallest prefix, most likely first,
 * whose probability reaches p, always at least one token; min-p keeps tokens at least minP times as likely as the
 * most likely one.
 *
 * <p>The draw uses {@link SplitMix64} seeded from {@link SamplingParams#seed()}: given the same logits, one seed gives
 * one token sequence on every run and machine. Greedy decoding draws nothing. (Math.exp may differ by an ulp between
 * CPU architectures, which moves a draw only when it lands within ~1e-7 of a boundary; StrictMath would remove even
 * that at twice the cost, and the logits themselves already differ between backends.)
 *
 * <p>Log-probabilities ({@link #chosen()}, {@link #top()}, {@link #logprob(int)}) are the log-softmax of the logits
 * after bias and penalties but before temperature and truncation, like OpenAI and vLLM's default: they describe the
 * model's distribution, not the sampler's.
 *
 * <p>One sampler per sequence, one thread at a time. Buffers are allocated once ({@code vocabSize} floats, plus ints
 * for candidates and penalties when those stages are on), so {@link #sample} allocates nothing per token; the key
 * buffer for top-p without top-k grows when a bucket outgrows it.
 */
public final class Sampler {

    private static final TokenLogprob[] NO_LOGPROBS = new TokenLogprob[0];
    // Top-p buckets cover 32 nats below the max (a ratio of 1e-14), the last one everything further down.
    private static final int NUM_TOP_P_BUCKETS = 1024;
    private static final double BUCKETS_PER_NAT = NUM_TOP_P_BUCKETS / 32.0;

    private final SamplingParams params;
    private final int vocabSize;
    private final long seed;
    private final SplitMix64 random;
    private final LogitPenalties penalties;
    private final float[] logits;     // [vocabSize] the last call's logits after bias and penalties
    private final int[] candidateIds; // [vocabSize] surviving candidates, most likely first once sorted
    private final float[] probs;      // [vocabSize] probability of candidateIds[i]
    private final long[] topKeys;     // [numLogprobs] for top()
    private final double[] bucketMass; // [NUM_TOP_P_BUCKETS] for top-p without top-k
    private final int[] bucketCount;   // [NUM_TOP_P_BUCKETS]
    private long[] keys;               // TopSelection keys; grows for top-p's crossing bucket

    private int lastToken = -1;
    private double logSumExp = Double.NaN; // of logits; NaN = not computed for the last call yet

    public Sampler(SamplingParams params, int vocabSize) {
        if (vocabSize < 1) {
            throw new IllegalArgumentException("vocabSize must be >= 1, found " + vocabSize);
        }
        this.params = params;
        this.vocabSize = vocabSize;
        this.seed = params.seed() != null ? params.seed() : ThreadLocalRandom.current().nextLong();
        this.random = new SplitMix64(seed);
        this.penalties = new LogitPenalties(params, vocabSize);
        this.logits = new float[vocabSize];
        boolean draws = !params.isGreedy();
        this.candidateIds = draws ? new int[vocabSize] : null;
        this.probs = draws ? new float[vocabSize] : null;
        int topK = effectiveTopK();
        this.keys = new long[draws && topK > 0 ? topK : 0];
        this.topKeys = new long[Math.min(params.numLogprobs(), vocabSize)];
        boolean buckets = draws && topK == 0 && params.topP() < 1f;
        this.bucketMass = buckets ? new double[NUM_TOP_P_BUCKETS] : null;
        this.bucketCount = buckets ? new int[NUM_TOP_P_BUCKETS] : null;
    }

    public SamplingParams params() {
        return params;
    }

    public int vocabSize() {
        return vocabSize;
    }

    /** The seed in use: the requested one, or the random one drawn when the request had none. */
    public long seed() {
        return seed;
    }

    /**
     * Whether {@link #sample} is just the argmax of the raw logits (greedy, no bias, no penalties, no logprobs), so
     * the caller may take the argmax on the device instead (LlamaModel.forwardArgmax).
     */
    public boolean isPlainArgmax() {
        return params.isGreedy() && !params.hasPenalties() && params.logitBias().isEmpty() && params.numLogprobs() == 0;
    }

    /** The error {@link #sample} throws when no logit is finite, for callers that took the argmax elsewhere. */
    public IllegalArgumentException noFiniteLogitError() {
        return noFiniteLogit();
    }

    /** Samples with an empty history (penalties then have nothing to look at). */
    public int sample(float[] logits) {
        return sample(logits, null, 0);
    }

    /**
     * Picks the next token. Reads logits[0..vocabSize) without changing them; history[0..historyLength) holds the
     * prompt and generated ids so far (null allowed when historyLength is 0).
     */
    public int sample(float[] logits, int[] history, int historyLength) {
        if (logits.length != vocabSize) {
            throw new IllegalArgumentException("logits has " + logits.length + " entries, expected vocabSize "
                    + vocabSize);
        }
        int capacity = history == null ? 0 : history.length;
        if (historyLength < 0 || historyLength > capacity) {
            throw new IllegalArgumentException("historyLength must be in [0, " + capacity + "], found "
                    + historyLength);
        }
        System.arraycopy(logits, 0, this.logits, 0, vocabSize);
        penalties.apply(this.logits, history, historyLength);
        logSumExp = Double.NaN;
        lastToken = -1;
        int token = params.isGreedy() ? argmax() : draw();
        lastToken = token;
        return token;
    }

    /** The token the last {@link #sample} picked, with its log-probability. */
    public TokenLogprob chosen() {
        requireSampled();
        return new TokenLogprob(lastToken, logprob(lastToken));
    }

    /** The {@code numLogprobs} most likely tokens of the last call, most likely first, ties to the lower id. */
    public TokenLogprob[] top() {
        requireSampled();
        int k = topKeys.length;
        if (k == 0) {
            return NO_LOGPROBS;
        }
        TopSelection.selectTop(logits, vocabSize, topKeys, k);
        double lse = logSumExp();
        TokenLogprob[] top = new TokenLogprob[k];
        for (int i = 0; i < k; i++) {
            int token = TopSelection.id(topKeys[i]);
            top[i] = new TokenLogprob(token, (float) (logits[token] - lse));
        }
        return top;
    }

    /** Log-probability of any token under the last call's distribution (after bias and penalties). */
    public float logprob(int token) {
        requireSampled();
        if (token < 0 || token >= vocabSize) {
            throw new IllegalArgumentException("token " + token + " is outside the vocabulary [0, " + vocabSize + ")");
        }
        return (float) (logits[token] - logSumExp());
    }

    private int argmax() {
        int best = -1;
        float bestLogit = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < vocabSize; i++) {
            // Strict: the first, lowest id wins ties. NaN never wins.
            if (logits[i] > bestLogit) {
                bestLogit = logits[i];
                best = i;
            }
        }
        if (best < 0) {
            throw noFiniteLogit();
        }
        return best;
    }

    private int draw() {
        int n;
        boolean sorted;
        int topK = effectiveTopK();
        if (topK > 0) {
            TopSelection.selectTop(logits, vocabSize, keys, topK);
            for (int i = 0; i < topK; i++) {
                candidateIds[i] = TopSelection.id(keys[i]);
            }
            n = topK;
            sorted = true;
        } else {
            for (int i = 0; i < vocabSize; i++) {
                candidateIds[i] = i;
            }
            n = vocabSize;
            sorted = false;
        }

        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[candidateIds[i]]);
        }
        if (!(max > Float.NEGATIVE_INFINITY) || Float.isNaN(max)) {
            throw noFiniteLogit();
        }
        // Softmax of logit / temperature, shifted by the max so that small temperatures cannot overflow.
        double invTemperature = 1.0 / params.temperature();
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float p = (float) Math.exp((logits[candidateIds[i]] - max) * invTemperature);
            probs[i] = p;
            sum += p;
        }
        float norm = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) {
            probs[i] *= norm;
        }
        float maxProb = norm; // the max logit's exp is exactly 1

        if (params.topP() < 1f) {
            n = sorted ? cutTopP(n) : bucketAndCutTopP(n, max);
        }
        if (params.minP() > 0f) {
            float threshold = params.minP() * maxProb;
            int kept = 0;
            for (int i = 0; i < n; i++) {
                if (probs[i] >= threshold) {
                    candidateIds[kept] = candidateIds[i];
                    probs[kept] = probs[i];
                    kept++;
                }
            }
            n = kept;
        }

        double total = 0;
        for (int i = 0; i < n; i++) {
            total += probs[i];
        }
        double r = random.nextDouble() * total;
        double cumulative = 0;
        for (int i = 0; i < n - 1; i++) {
            cumulative += probs[i];
            if (r < cumulative) {
                return candidateIds[i];
            }
        }
        return candidateIds[n - 1];
    }

    /** Candidates are sorted: keep the shortest prefix reaching topP. */
    private int cutTopP(int n) {
        double cumulative = 0;
        for (int i = 0; i < n; i++) {
            cumulative += probs[i];
            if (cumulative >= params.topP()) {
                return i + 1;
            }
        }
        return n;
    }

    /**
     * Candidates are the whole vocabulary in id order. Sorting 150k of them per token is wasteful, so, in the spirit of
     * llama.cpp's bucket sort, bucket them by tempered log-probability in one pass, add bucket masses from the most
     * likely down to the bucket where the mass reaches topP, and sort only that bucket. The nucleus is the set a full
     * sort gives (up to summation rounding); the buckets above the crossing one keep id order, which is as
     * deterministic as sorted order and cheaper.
     *
     * @param max the largest candidate logit
     */
    private int bucketAndCutTopP(int n, float max) {
        double invTemperature = 1.0 / params.temperature();
        Arrays.fill(bucketMass, 0);
        Arrays.fill(bucketCount, 0);
        for (int i = 0; i < n; i++) {
            int b = bucket(logits[i], max, invTemperature);
            bucketMass[b] += probs[i];
            bucketCount[b]++;
        }
        double above = 0;
        int crossing = -1;
        for (int b = 0; b < NUM_TOP_P_BUCKETS; b++) {
            if (above + bucketMass[b] >= params.topP()) {
                crossing = b;
                break;
            }
            above += bucketMass[b];
        }
        if (crossing < 0) {
            return n; // rounding left the total just under topP: keep everything
        }
        if (keys.length < bucketCount[crossing]) {
            keys = new long[Math.max(bucketCount[crossing], 2 * keys.length)];
        }
        // Candidates are the identity here (candidateIds[i] == i), and kept <= i, so compacting in place is safe.
        int kept = 0;
        int numCrossing = 0;
        for (int i = 0; i < n; i++) {
            int b = bucket(logits[i], max, invTemperature);
            if (b < crossing) {
                candidateIds[kept] = i;
                probs[kept] = probs[i];
                kept++;
            } else if (b == crossing) {
                keys[numCrossing++] = TopSelection.key(probs[i], i);
            }
        }
        Arrays.sort(keys, 0, numCrossing);
        double cumulative = above;
        for (int j = numCrossing - 1; j >= 0; j--) {
            float p = TopSelection.value(keys[j]);
            candidateIds[kept] = TopSelection.id(keys[j]);
            probs[kept] = p;
            kept++;
            cumulative += p;
            if (cumulative >= params.topP()) {
                break;
            }
        }
        return kept;
    }

    /** Bucket 0 holds the max logit; each bucket spans 1/BUCKETS_PER_NAT of a nat of tempered log-probability. */
    private static int bucket(float logit, float max, double invTemperature) {
        double nats = (max - logit) * invTemperature;
        return (int) Math.min(NUM_TOP_P_BUCKETS - 1, nats * BUCKETS_PER_NAT);
    }

    private double logSumExp() {
        if (Double.isNaN(logSumExp)) {
            float max = Float.NEGATIVE_INFINITY;
            for (int i = 0; i < vocabSize; i++) {
                max = Math.max(max, logits[i]);
            }
            if (max == Float.NEGATIVE_INFINITY) {
                logSumExp = Double.NEGATIVE_INFINITY;
            } else {
                double sum = 0;
                for (int i = 0; i < vocabSize; i++) {
                    sum += Math.exp(logits[i] - max);
                }
                logSumExp = max + Math.log(sum);
            }
        }
        return logSumExp;
    }

    /** Top-k at or past the vocabulary size keeps everything, the same as off. */
    private int effectiveTopK() {
        int k = params.topK();
        return k > 0 && k < vocabSize ? k : 0;
    }

    private void requireSampled() {
        if (lastToken < 0) {
            throw new IllegalStateException("no token sampled yet: call sample() first");
        }
    }

    private IllegalArgumentException noFiniteLogit() {
        return new IllegalArgumentException("no token can be sampled: all " + vocabSize
                + " logits are -inf or NaN after bias and penalties");
    }
}
