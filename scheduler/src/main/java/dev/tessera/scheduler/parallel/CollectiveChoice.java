package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.collective.CollectiveKind;

import java.util.List;

/**
 * The collective a group uses, decided at set-up from what every rank reported it computes on (its hello answer) —
 * before any rank starts joining NCCL, whose ncclCommInitRank would wait for a rank that can never arrive.
 */
public final class CollectiveChoice {
    /**
     * A rank as the decision sees it.
     *
     * @param name        as errors name it: "rank 0 (this process)", "worker H:P (rank R)"
     * @param backend     its {@code Backend.name()}: "cpu (N threads)", "cuda:N (device)"
     * @param ncclProblem empty when libnccl loads there, else the one-line reason it does not
     */
    public record Rank(String name, String backend, String ncclProblem) {
        public boolean onCuda() {
            return backend.startsWith("cuda");
        }

        boolean canJoinNccl() {
            return onCuda() && ncclProblem.isEmpty();
        }
    }

    private CollectiveChoice() {}

    /**
     * STAR, RING or NCCL. AUTO is NCCL only when every rank is on CUDA with libnccl, else STAR; NCCL asked for where
     * a rank cannot join it is refused in one line naming that rank. Workers are looked at first: the usual mistake
     * is a worker started without {@code --device cuda}.
     */
    public static CollectiveKind resolve(CollectiveKind requested, Rank master, List<Rank> workers) {
        return switch (requested) {
            case STAR, RING -> requested;
            case AUTO -> master.canJoinNccl() && workers.stream().allMatch(Rank::canJoinNccl) ? CollectiveKind.NCCL : CollectiveKind.STAR;
            case NCCL -> {
                for (Rank w : workers) refuseUnlessAble(w);
                refuseUnlessAble(master);
                yield CollectiveKind.NCCL;
            }
        };
    }

    private static void refuseUnlessAble(Rank r) {
        if (!r.onCuda())
            throw new IllegalArgumentException("--collective nccl needs every rank on CUDA; " + r.name() + " computes on " + r.backend());
        if (!r.ncclProblem().isEmpty())
            throw new IllegalArgumentException("--collective nccl: " + r.name() + ": " + r.ncclProblem());
    }
}
