package dev.tessera.scheduler.kv;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Seeded random interleavings of admit (prefix lookup + prefill), decode, finish, preemption, raw lookups
 * and n > 1 sharing against one small pool. A fake device memory records which token each slot was
 * written for, so a prefix hit that returns the wrong blocks, or a write into a block someone else holds,
 * shows up as a token mismatch.
 */
class KvBlockPoolPropertyTest {

    private static final int NUM_BLOCKS = 24;
    private static final int BLOCK_SIZE = 4;
    private static final int NUM_STEPS = 3_000;

    /** Few distinct keys, so colliding buckets are the common case. */
    private static final BlockHashFunction FOUR_KEYS = (parent, tokens, from, count) ->
            Math.floorMod(parent * 31 + tokens[from], 4);

    private static final class Sequence {
        final BlockTable table;
        int[] tokens;
        int numComputed;

        Sequence(BlockTable table, int[] tokens) {
            this.table = table;
            this.tokens = tokens;
        }
    }

    @Test
    void randomInterleavingsKeepEveryInvariantWithXxHash() {
        for (long seed = 1; seed <= 12; seed++) {
            run(seed, XxHashBlockHash.INSTANCE);
        }
    }

    @Test
    void randomInterleavingsKeepEveryInvariantWithCollidingHashes() {
        for (long seed = 101; seed <= 112; seed++) {
            run(seed, FOUR_KEYS);
        }
    }

    private static void run(long seed, BlockHashFunction hashFunction) {
        Random random = new Random(seed);
        KvBlockPool pool = new KvBlockPool(NUM_BLOCKS, BLOCK_SIZE, hashFunction);
        int[] deviceTokens = new int[NUM_BLOCKS * BLOCK_SIZE]; // token each slot's K/V was computed for
        int[][] prefixes = new int[3][];
        for (int i = 0; i < prefixes.length; i++) {
            prefixes[i] = randomTokens(random, 12);
        }
        List<Sequence> live = new ArrayList<>();
        long hits = 0;
        for (int step = 0; step < NUM_STEPS; step++) {
            String where = "seed " + seed + " step " + step;
            int op = random.nextInt(10);
            if (op < 3 && live.size() < 6) {
                int[] shared = prefixes[random.nextInt(prefixes.length)];
                int[] prompt = concat(Arrays.copyOf(shared, random.nextInt(shared.length + 1)),
                        randomTokens(random, 1 + random.nextInt(10)));
                Sequence s = new Sequence(new BlockTable(pool), prompt);
                int cached = s.table.adoptCachedPrefix(prompt, prompt.length - 1);
                hits += cached;
                checkContent(pool, deviceTokens, s.table, prompt, cached, where + " adopted prefix");
                if (!s.table.append(prompt.length - cached)) {
                    s.table.free(); // not admitted: no room
                } else {
                    write(pool, deviceTokens, s.table, prompt, cached, prompt.length, where);
                    s.numComputed = prompt.length;
                    s.table.cacheFullBlocks(prompt, prompt.length);
                    live.add(s);
                }
            } else if (op < 6 && !live.isEmpty()) {
                Sequence s = live.get(random.nextInt(live.size()));
                if (!s.table.append(1)) {
                    s.table.free(); // preempted: blocks back at once, recomputed later in the real engine
                    live.remove(s);
                } else {
                    s.tokens = concat(s.tokens, random.nextInt(4));
                    write(pool, deviceTokens, s.table, s.tokens, s.numComputed, s.numComputed + 1, where);
                    s.numComputed++;
                    s.table.cacheFullBlocks(s.tokens, s.numComputed);
                }
            } else if (op < 8 && !live.isEmpty()) {
                live.remove(random.nextInt(live.size())).table.free(); // finish or cancel
            } else if (op < 9) {
                int[] probe = concat(prefixes[random.nextInt(prefixes.length)], randomTokens(random, 4));
                int[] found = pool.lookup(probe).blockIds();
                for (int i = 0; i < found.length; i++) {
                    for (int o = 0; o < BLOCK_SIZE; o++) {
                        assertEquals(probe[i * BLOCK_SIZE + o], deviceTokens[found[i] * BLOCK_SIZE + o],
                                where + ": lookup returned block " + found[i] + " with other tokens");
                    }
                }
                pool.free(found);
            } else if (!live.isEmpty()) {
                // n > 1: a child shares the parent's full blocks for a while
                Sequence s = live.get(random.nextInt(live.size()));
                int[] full = Arrays.copyOf(s.table.blockIds(), s.numComputed / BLOCK_SIZE);
                pool.share(full);
                checkOwnership(pool, live, full, where);
                pool.free(full);
            }
            checkOwnership(pool, live, new int[0], where);
            for (Sequence s : live) {
                checkContent(pool, deviceTokens, s.table, s.tokens, s.numComputed, where);
            }
        }
        assertTrue(hits > 0 || hashFunction == FOUR_KEYS, "seed " + seed + ": no prefix hit at all");
        for (Sequence s : live) {
            s.table.free();
        }
        KvLeakCheck.assertAllFree(pool, NUM_BLOCKS);
    }

    /** Simulated prefill/decode: writes tokens[from, to) into their slots, which nobody else may hold. */
    private static void write(KvBlockPool pool, int[] deviceTokens, BlockTable table, int[] tokens, int from,
            int to, String where) {
        for (int p = from; p < to; p++) {
            assertEquals(1, pool.refCount(table.blockOf(p)), where + ": write into shared block " + table.blockOf(p));
            deviceTokens[table.slotOf(p)] = tokens[p];
        }
    }

    private static void checkContent(KvBlockPool pool, int[] deviceTokens, BlockTable table, int[] tokens,
            int numComputed, String where) {
        for (int p = 0; p < numComputed; p++) {
            assertEquals(tokens[p], deviceTokens[table.slotOf(p)],
                    where + ": position " + p + " in block " + table.blockOf(p) + " holds another token");
        }
    }

    /** Every holder is counted: a block appears in tables (plus extra) exactly refCount times. */
    private static void checkOwnership(KvBlockPool pool, List<Sequence> live, int[] extra, String where) {
        pool.checkInvariants();
        int[] holders = new int[NUM_BLOCKS];
        for (Sequence s : live) {
            int[] ids = s.table.blockIds();
            assertEquals(ids.length, Arrays.stream(ids).distinct().count(), where + ": a table holds a block twice");
            for (int b : ids) {
                holders[b]++;
            }
        }
        for (int b : extra) {
            holders[b]++;
        }
        for (int b = 0; b < NUM_BLOCKS; b++) {
            assertEquals(holders[b], pool.refCount(b), where + ": holders of block " + b);
        }
        assertEquals(NUM_BLOCKS, pool.numEmpty() + pool.numUsed() + pool.numCachedIdle(), where);
    }

    private static int[] randomTokens(Random random, int n) {
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) {
            tokens[i] = random.nextInt(4);
        }
        return tokens;
    }

    private static int[] concat(int[] a, int... b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
