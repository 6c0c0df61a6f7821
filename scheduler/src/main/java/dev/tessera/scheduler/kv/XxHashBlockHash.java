package dev.tessera.scheduler.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.lwjgl.system.MemoryStack;
import org.lwjgl.system.MemoryUtil;
import org.lwjgl.util.xxhash.XXHash;

/**
 * {@link BlockHashFunction} over LWJGL's xxHash binding: XXH3_64bits_withSeed of the little-endian bytes
 * [parentHash: 8][token ids: 4 each]. The bytes are staged on the thread's {@link MemoryStack} (a 16-token
 * block is 72 bytes), or in a malloc'd buffer when a block is too large for the stack.
 */
public final class XxHashBlockHash implements BlockHashFunction {

    /** Seed of every block hash; fixed so keys are stable across processes and restarts. */
    static final long SEED = 0x7E55E5A_0C0FFEEL;

    /** Largest buffer staged on the stack; LWJGL's default stack is 64 KiB. */
    private static final int MAX_STACK_BYTES = 8 * 1024;

    public static final XxHashBlockHash INSTANCE = new XxHashBlockHash();

    private XxHashBlockHash() {}

    @Override
    public long hash(long parentHash, int[] tokens, int from, int count) {
        if (from < 0 || count < 0 || from + count > tokens.length) {
            throw new IndexOutOfBoundsException("block hash: tokens [" + from + ", " + (from + count)
                    + ") out of an array of " + tokens.length);
        }
        int sizeBytes = Long.BYTES + count * Integer.BYTES;
        if (sizeBytes <= MAX_STACK_BYTES) {
            try (MemoryStack stack = MemoryStack.stackPush()) {
                return hash(stack.malloc(sizeBytes), parentHash, tokens, from, count);
            }
        }
        ByteBuffer offHeap = MemoryUtil.memAlloc(sizeBytes);
        try {
            return hash(offHeap, parentHash, tokens, from, count);
        } finally {
            MemoryUtil.memFree(offHeap);
        }
    }

    private static long hash(ByteBuffer buffer, long parentHash, int[] tokens, int from, int count) {
        buffer.order(ByteOrder.LITTLE_ENDIAN);
        buffer.putLong(0, parentHash);
        for (int i = 0; i < count; i++) {
            buffer.putInt(Long.BYTES + i * Integer.BYTES, tokens[from + i]);
        }
        return XXHash.XXH3_64bits_withSeed(buffer, SEED);
    }
}
