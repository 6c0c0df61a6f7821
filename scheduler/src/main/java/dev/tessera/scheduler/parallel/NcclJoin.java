package dev.tessera.scheduler.parallel;

import dev.tessera.kernels.cuda.CudaBackend;
import dev.tessera.kernels.cuda.NcclCollective;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * One rank joining an NCCL group on a thread of its own, so that a rank that never arrives costs a timeout, not a
 * hang: ncclCommInitRank blocks until every rank has joined and cannot be interrupted. After a timeout its thread is
 * left blocked (a daemon); should it ever return, the communicator is aborted at once.
 */
final class NcclJoin {
    private final int rank, size;
    private final CompletableFuture<NcclCollective> result = new CompletableFuture<>();

    /** Starts joining at once. */
    NcclJoin(CudaBackend backend, int rank, int size, byte[] id) {
        this.rank = rank;
        this.size = size;
        Thread.ofPlatform().daemon().name("nccl-init-rank-" + rank).start(() -> {
            try {
                result.complete(new NcclCollective(backend, rank, size, id));
            } catch (Throwable e) {
                result.completeExceptionally(e);
            }
        });
    }

    /** The joined communicator, or an IOException of one line; a failed or late join is {@link #abandon}ed. */
    NcclCollective await(long deadlineNanos) throws IOException {
        try {
            return result.get(Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            abandon();
            throw new IOException("rank " + rank + " of " + size + ": ncclCommInitRank did not return in time (a rank never joined)");
        } catch (ExecutionException e) {
            throw new IOException(String.valueOf(e.getCause().getMessage()), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            abandon();
            throw new IOException("rank " + rank + ": interrupted while joining the NCCL group", e);
        }
    }

    /** Gives the join up: a communicator that is, or later will be, made is aborted rather than used. */
    void abandon() {
        result.thenAccept(nccl -> nccl.abort("NCCL group set-up abandoned"));
    }
}
