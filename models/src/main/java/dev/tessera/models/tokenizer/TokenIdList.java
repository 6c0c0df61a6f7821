package dev.tessera.models.tokenizer;

import java.util.Arrays;

/** A growable int array for token ids, so encoding does not box. */
final class TokenIdList {
    private int[] ids;
    private int size;

    TokenIdList(int capacity) {
        ids = new int[Math.max(capacity, 8)];
    }

    void add(int id) {
        if (size == ids.length) ids = Arrays.copyOf(ids, ids.length * 2);
        ids[size++] = id;
    }

    int size() { return size; }

    int[] toArray() { return Arrays.copyOf(ids, size); }
}
