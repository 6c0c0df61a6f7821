package dev.tessera.kernels.collective;

import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * How the ranks of a group combine rows, as {@code --collective auto|star|ring|nccl} names it. STAR and RING are the
 * TCP algorithms of {@link AllReduceKind}; NCCL runs on the ranks' CUDA devices; AUTO is decided when the group is
 * set up, once every rank has said what it computes on.
 */
public enum CollectiveKind {
    /** NCCL when every rank computes on CUDA and can load libnccl, else STAR. */
    AUTO,
    STAR,
    RING,
    /** One NCCL communicator over every rank's CUDA device; the TCP control connections only carry its unique id. */
    NCCL;

    /** The flag spelling: auto, star, ring or nccl. */
    public String flagName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses a flag value; throws IllegalArgumentException naming the accepted values. */
    public static CollectiveKind parse(String value) {
        for (CollectiveKind k : values()) {
            if (k.flagName().equals(value.trim().toLowerCase(Locale.ROOT))) return k;
        }
        throw new IllegalArgumentException("unknown --collective '" + value + "', expected "
                + Arrays.stream(values()).map(CollectiveKind::flagName).collect(Collectors.joining("|")));
    }

    /** The TCP algorithm of STAR or RING; AUTO and NCCL have none. */
    public AllReduceKind tcp() {
        return switch (this) {
            case STAR -> AllReduceKind.STAR;
            case RING -> AllReduceKind.RING;
            case AUTO, NCCL -> throw new IllegalStateException(flagName() + " is not a TCP algorithm");
        };
    }
}
