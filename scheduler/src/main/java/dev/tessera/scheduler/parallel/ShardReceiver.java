package dev.tessera.scheduler.parallel;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The worker's side of a shard transfer: reads ShardBegin, chunks and ShardEnd from the control connection into
 * {@code DIR/NAME.part}, checks the byte count and SHA-256, and only then renames it to {@code DIR/NAME}. Anything short,
 * long, out of order or with the wrong hash leaves no shard behind.
 */
final class ShardReceiver {
    private ShardReceiver() {}

    static Path receive(DataInputStream in, Path dir, PrintStream log) throws IOException {
        if (!(TpProtocol.read(in) instanceof TpProtocol.ShardBegin begin)) throw new TpProtocol.ProtocolException("expected a shard-begin frame");
        Files.createDirectories(dir);
        Path target = dir.resolve(begin.fileName());
        Path part = dir.resolve(begin.fileName() + ".part");
        MessageDigest sha = sha256();
        long received = 0;
        boolean done = false;
        try {
            try (OutputStream file = Files.newOutputStream(part)) {
                while (true) {
                    TpProtocol.Message m = TpProtocol.read(in);
                    if (m instanceof TpProtocol.ShardChunk c) {
                        received += c.data().length;
                        if (received > begin.sizeBytes())
                            throw new TpProtocol.ProtocolException("shard " + begin.fileName() + " is longer than the announced " + begin.sizeBytes() + " bytes");
                        sha.update(c.data());
                        file.write(c.data());
                    } else if (m instanceof TpProtocol.ShardEnd end) {
                        if (received != begin.sizeBytes())
                            throw new TpProtocol.ProtocolException("shard " + begin.fileName() + " ended after " + received + " of " + begin.sizeBytes() + " bytes");
                        String hash = HexFormat.of().formatHex(sha.digest());
                        if (!hash.equals(end.sha256()))
                            throw new TpProtocol.ProtocolException("shard " + begin.fileName() + " has SHA-256 " + hash + ", the master sent " + end.sha256());
                        break;
                    } else {
                        throw new TpProtocol.ProtocolException("unexpected " + m.getClass().getSimpleName() + " frame during a shard transfer");
                    }
                }
            }
            Files.move(part, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            done = true;
            log.println("tessera worker: received shard " + target + " (" + received / 1024 + " KiB, SHA-256 verified)");
            return target;
        } finally {
            if (!done) Files.deleteIfExists(part);
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
