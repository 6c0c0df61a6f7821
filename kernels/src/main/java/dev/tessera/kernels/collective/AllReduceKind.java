package dev.tessera.kernels.collective;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The allreduce algorithms, as named by {@code --allreduce star|ring}. */
public enum AllReduceKind {
    /** Workers send their parts to rank 0, which adds them in rank order and sends the sum back: 2 hops. */
    STAR,
    /** Reduce-scatter then all-gather around the ring: 2(N-1) sequential steps of length/N floats each. */
    RING;

    /** The flag spelling: {@code star} or {@code ring}. */
    public String flagName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses a flag value; throws IllegalArgumentException naming the accepted values. */
    public static AllReduceKind parse(String value) {
        for (AllReduceKind k : values()) {
            if (k.flagName().equals(value.trim().toLowerCase(Locale.ROOT))) return k;
        }
        throw new IllegalArgumentException("unknown allreduce algorithm '" + value + "', expected one of "
                + Arrays.stream(values()).map(AllReduceKind::flagName).collect(Collectors.joining("|")));
    }
}
