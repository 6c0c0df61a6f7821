package dev.tessera.models.sample;

import java.util.Arrays;

/**
 * Picks the k largest of n floats without sorting all n: a size-k min-heap of packed keys, O(n log k).
 * A key packs an order-preserving form of the value into the high 32 bits and {@code MAX - id} into the low 31, so
 * one signed long comparison orders by value and, among equal values, prefers the lower id.
 */
final class TopSelection {

    private TopSelection() {
    }

    static long key(float value, int id) {
        // + 0f turns -0.0 into +0.0, so that both zeros tie and fall back to the id.
        int bits = Float.floatToRawIntBits(value + 0f);
        bits ^= (bits >> 31) & 0x7fffffff;
        return ((long) bits << 32) | (Integer.MAX_VALUE - id);
    }

    static int id(long key) {
        return Integer.MAX_VALUE - (int) key;
    }

    static float value(long key) {
        int bits = (int) (key >>> 32);
        bits ^= (bits >> 31) & 0x7fffffff;
        return Float.intBitsToFloat(bits);
    }

    /**
     * Writes the keys of the k largest of values[0..n), value index = id, into keys[0..k) in descending order
     * (ties: lower id first). NaN values are never preferred over numbers seen earlier; callers reject NaN results.
     */
    static void selectTop(float[] values, int n, long[] keys, int k) {
        if (k >= n) {
            for (int i = 0; i < n; i++) {
                keys[i] = key(values[i], i);
            }
            Arrays.sort(keys, 0, n);
            reverse(keys, n);
            return;
        }
        for (int i = 0; i < k; i++) {
            keys[i] = key(values[i], i);
        }
        for (int i = k / 2 - 1; i >= 0; i--) {
            siftDown(keys, k, i);
        }
        float threshold = value(keys[0]);
        for (int i = k; i < n; i++) {
            // A later index never wins a tie, so a strict comparison of values is enough.
            if (values[i] > threshold) {
                keys[0] = key(values[i], i);
                siftDown(keys, k, 0);
                threshold = value(keys[0]);
            }
        }
        Arrays.sort(keys, 0, k);
        reverse(keys, k);
    }

    private static void siftDown(long[] heap, int size, int i) {
        long x = heap[i];
        while (true) {
            int child = 2 * i + 1;
            if (child >= size) {
                break;
            }
            if (child + 1 < size && heap[child + 1] < heap[child]) {
                child++;
            }
            if (heap[child] >= x) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = x;
    }

    private static void reverse(long[] a, int n) {
        for (int i = 0, j = n - 1; i < j; i++, j--) {
            long t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
