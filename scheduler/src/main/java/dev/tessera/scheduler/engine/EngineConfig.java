package dev.tessera.scheduler.engine;

import dev.tessera.kernels.KvCacheType;
import dev.tessera.scheduler.kv.KvBlockPool;

/**
 * How the batching engine schedules and how much KV memory it has.
 *
 * @param maxNumSeqs          sequences running at once ({@code --max-num-seqs})
 * @param maxBatchedTokens    tokens in one step, decode tokens plus prefill chunks ({@code --max-num-batched-tokens})
 * @param maxWaiting          requests that may wait to start; one more is refused
 * @param kvCacheMemoryBytes  bytes for the paged KV pool ({@code --kv-cache-memory}); 0 picks {@link #defaultKvCacheMemory}
 * @param kvCacheType         element type of cached keys and values ({@code --kv-cache-type})
 * @param blockSize           positions per KV block
 * @param prefixCaching       whether full blocks are published and reused across requests
 * @param sequenceTokensCap   the most positions one sequence can need, when the caller knows it (generate: prompt plus
 *                            --max-tokens); 0 = the model's context. Only the default KV size reads it.
 */
public record EngineConfig(int maxNumSeqs, int maxBatchedTokens, int maxWaiting, long kvCacheMemoryBytes,
                           KvCacheType kvCacheType, int blockSize, boolean prefixCaching, int sequenceTokensCap) {
    public static final int DEFAULT_MAX_NUM_SEQS = 16;

    public EngineConfig {
        if (maxNumSeqs < 1 || maxBatchedTokens < maxNumSeqs || maxWaiting < 1)
            throw new IllegalArgumentException("need 1 <= max-num-seqs (" + maxNumSeqs + ") <= max-num-batched-tokens ("
                    + maxBatchedTokens + ") and max waiting (" + maxWaiting + ") >= 1");
        if (kvCacheMemoryBytes < 0) throw new IllegalArgumentException("--kv-cache-memory must be >= 0 bytes, found " + kvCacheMemoryBytes);
        if (blockSize < 1) throw new IllegalArgumentException("KV block size must be >= 1, found " + blockSize);
        if (sequenceTokensCap < 0) throw new IllegalArgumentException("sequence token cap must be >= 0, found " + sequenceTokensCap);
    }

    public static EngineConfig defaults(int maxNumSeqs, int maxBatchedTokens, int maxWaiting) {
        return new EngineConfig(maxNumSeqs, maxBatchedTokens, maxWaiting, 0, KvCacheType.F32, KvBlockPool.DEFAULT_BLOCK_SIZE, true, 0);
    }

    public EngineConfig withKvCache(long bytes, KvCacheType type) {
        return new EngineConfig(maxNumSeqs, maxBatchedTokens, maxWaiting, bytes, type, blockSize, prefixCaching, sequenceTokensCap);
    }

    public EngineConfig withPrefixCaching(boolean enabled) {
        return new EngineConfig(maxNumSeqs, maxBatchedTokens, maxWaiting, kvCacheMemoryBytes, kvCacheType, blockSize, enabled, sequenceTokensCap);
    }

    public EngineConfig withSequenceTokensCap(int tokens) {
        return new EngineConfig(maxNumSeqs, maxBatchedTokens, maxWaiting, kvCacheMemoryBytes, kvCacheType, blockSize, prefixCaching, tokens);
    }

    /**
     * Without {@code --kv-cache-memory}: room for every sequence at full context (or at {@link #sequenceTokensCap}), but
     * no more than the backend's budget, and never less than one such sequence. On the CPU the pool is zeroed heap, all
     * of it resident, so a one-off generate sized for the whole context would hold hundreds of MB it never touches.
     */
    public long defaultKvCacheMemory(long bytesPerToken, int contextLength, long budgetBytes) {
        if (sequenceTokensCap > 0) contextLength = Math.min(contextLength, sequenceTokensCap);
        long full = bytesPerToken * contextLength * maxNumSeqs;
        long one = bytesPerToken * (contextLength + blockSize);
        return Math.max(one, Math.min(full, budgetBytes));
    }
}
