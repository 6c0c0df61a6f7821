package dev.tessera.scheduler.parallel;

import dev.tessera.models.arch.ModelConfig;
import dev.tessera.models.gguf.GgufFile;

import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Locale;

/**
 * The master's side of a shard transfer, for a worker that has no shard yet: writes that rank's shard to a temporary
 * file, then streams it on the control connection (ShardBegin, chunks, ShardEnd with the SHA-256 of every byte) with a
 * progress bar on {@code progress}. The worker checks size and hash, stores it, and checks its metadata as for a shard
 * made by {@code tessera shard}, so the next connection needs no transfer.
 */
final class ShardSender {
    private ShardSender() {}

    static void send(GgufFile file, ModelConfig config, ShardPlan plan, int rank, String fingerprint, DataOutputStream out,
                     String workerName, PrintStream progress) throws IOException {
        String name = ShardWriter.fileName(file.path().getFileName().toString(), plan, rank);
        Path temp = Files.createTempFile("tessera-shard-", ".gguf");
        try {
            ShardWriter.write(file, config, plan, rank, fingerprint, temp);
            long size = Files.size(temp);
            TpProtocol.write(out, new TpProtocol.ShardBegin(name, size));
            MessageDigest sha = ShardReceiver.sha256();
            long sent = 0, started = System.nanoTime(), drawn = 0;
            String label = "tessera: sending shard " + name + " to " + workerName;
            try (InputStream in = Files.newInputStream(temp)) {
                byte[] buf = new byte[TpProtocol.MAX_CHUNK_BYTES];
                int n;
                while ((n = in.readNBytes(buf, 0, buf.length)) > 0) {
                    byte[] chunk = n == buf.length ? buf.clone() : java.util.Arrays.copyOf(buf, n);
                    sha.update(chunk);
                    TpProtocol.write(out, new TpProtocol.ShardChunk(chunk));
                    sent += n;
                    long now = System.nanoTime();
                    if (progress != null && (now - drawn > 200_000_000L || sent == size)) {
                        drawn = now;
                        draw(progress, label, sent, size, (now - started) / 1e9);
                    }
                }
            }
            if (sent != size) throw new IOException("shard " + temp + " changed while it was sent");
            TpProtocol.write(out, new TpProtocol.ShardEnd(HexFormat.of().formatHex(sha.digest())));
            if (progress != null) progress.println();
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    private static void draw(PrintStream out, String label, long done, long total, double seconds) {
        int width = 30, filled = (int) (width * done / Math.max(1, total));
        out.printf(Locale.ROOT, "\r%s [%s%s] %3d%%  %.1f / %.1f MB  %.1f MB/s", label, "#".repeat(filled), ".".repeat(width - filled),
                100 * done / Math.max(1, total), done / 1e6, total / 1e6, done / 1e6 / Math.max(1e-9, seconds));
        out.flush();
    }
}
