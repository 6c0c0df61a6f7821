package dev.tessera.kernels.collective;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32;

/**
 * The wire format of the TCP collectives, one frame per message, all fields little-endian:
 *
 * <pre>
 * offset  size  field
 *      0     4  magic 0x4C4F4354 (the bytes "TCOL")
 *      4     1  version (1)
 *      5     1  type ({@link Type})
 *      6     2  sender rank
 *      8     8  sequence number: frames on one connection, one direction, count up from 0 (the HELLO)
 *     16     4  word count n: 32-bit payload words (floats, or ints in a HELLO)
 *     20    4n  payload
 *   20+4n    4  CRC32 of bytes [0, 20+4n)
 * </pre>
 *
 * A receiver knows which type, sender, sequence and count come next and rejects anything else before reading the
 * payload, so a bad count never sizes an allocation.
 */
public final class CollectiveFrame {
    public static final int MAGIC = 0x4C4F4354;
    public static final byte VERSION = 1;
    public static final int HEADER_BYTES = 20;
    public static final int TRAILER_BYTES = 4;
    /** Largest payload accepted: 1 GiB of floats. */
    public static final int MAX_WORDS = 1 << 28;
    /** A HELLO carries {rank, size, algorithm ordinal}. */
    public static final int HELLO_WORDS = 3;

    private static final VarHandle INT = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle SHORT = MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /** Frame types; the byte on the wire is {@link #code}. */
    public enum Type {
        HELLO(1), PARTIAL(2), RESULT(3), RING_REDUCE(4), RING_GATHER(5);

        public final byte code;

        Type(int code) {
            this.code = (byte) code;
        }

        static String describe(int code) {
            for (Type t : values()) if (t.code == code) return t.name();
            return "unknown type " + code;
        }
    }

    /** The parsed fixed-size header. */
    public record Header(int magic, int version, int type, int senderRank, long sequence, int words) {}

    private CollectiveFrame() {}

    public static int frameBytes(int words) {
        return HEADER_BYTES + words * Float.BYTES + TRAILER_BYTES;
    }

    public static void writeHeader(byte[] frame, Type type, int senderRank, long sequence, int words) {
        INT.set(frame, 0, MAGIC);
        frame[4] = VERSION;
        frame[5] = type.code;
        SHORT.set(frame, 6, (short) senderRank);
        LONG.set(frame, 8, sequence);
        INT.set(frame, 16, words);
    }

    public static void writeFloats(byte[] frame, float[] src, int offset, int length) {
        ByteBuffer.wrap(frame, HEADER_BYTES, length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN)
                .asFloatBuffer().put(src, offset, length);
    }

    public static void writeInts(byte[] frame, int... words) {
        for (int i = 0; i < words.length; i++) INT.set(frame, HEADER_BYTES + i * Integer.BYTES, words[i]);
    }

    /** Writes the CRC trailer of a frame whose header and payload are filled in. */
    public static void seal(byte[] frame, int words) {
        int end = HEADER_BYTES + words * Float.BYTES;
        INT.set(frame, end, crc(frame, end));
    }

    /** Encodes a whole frame of floats; returns its size in bytes. */
    public static int encode(byte[] frame, Type type, int senderRank, long sequence, float[] src, int offset, int length) {
        writeHeader(frame, type, senderRank, sequence, length);
        writeFloats(frame, src, offset, length);
        seal(frame, length);
        return frameBytes(length);
    }

    public static Header readHeader(byte[] frame) {
        return new Header((int) INT.get(frame, 0), frame[4], frame[5], Short.toUnsignedInt((short) SHORT.get(frame, 6)),
                (long) LONG.get(frame, 8), (int) INT.get(frame, 16));
    }

    /** The CRC stored in the trailer of a frame with {@code words} payload words. */
    public static int storedCrc(byte[] frame, int words) {
        return (int) INT.get(frame, HEADER_BYTES + words * Float.BYTES);
    }

    public static int crc(byte[] frame, int length) {
        CRC32 crc = new CRC32();
        crc.update(frame, 0, length);
        return (int) crc.getValue();
    }

    public static int readInt(byte[] frame, int word) {
        return (int) INT.get(frame, HEADER_BYTES + word * Integer.BYTES);
    }

    /** dst[offset + i] = payload float i, or += when {@code add}. */
    public static void readFloats(byte[] frame, float[] dst, int offset, int length, boolean add, float[] scratch) {
        var floats = ByteBuffer.wrap(frame, HEADER_BYTES, length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
        if (!add) {
            floats.get(dst, offset, length);
            return;
        }
        floats.get(scratch, 0, length);
        for (int i = 0; i < length; i++) dst[offset + i] += scratch[i];
    }
}
