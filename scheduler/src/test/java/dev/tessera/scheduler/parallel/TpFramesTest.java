package dev.tessera.scheduler.parallel;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The group set-up frames: the hello answer with the worker's backend, the group frame (TCP or NCCL), the NCCL join answer. */
class TpFramesTest {

    static TpProtocol.Message roundTrip(TpProtocol.Message m) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        TpProtocol.write(new DataOutputStream(bytes), m);
        return TpProtocol.read(new DataInputStream(new ByteArrayInputStream(bytes.toByteArray())));
    }

    @Test
    void helloAnswerGroupAndJoinAnswerRoundTrip() throws IOException {
        TpProtocol.HelloOk ok = new TpProtocol.HelloOk("10.0.0.2:4000", "cuda:1 (NVIDIA H100 80GB HBM3)", "");
        assertEquals(ok, roundTrip(ok));
        TpProtocol.HelloOk cpu = new TpProtocol.HelloOk("", "cpu (4 threads)", "NCCL unavailable: libnccl.so.2 not found");
        assertEquals(cpu, roundTrip(cpu));

        TpProtocol.Group tcp = (TpProtocol.Group) roundTrip(new TpProtocol.Group("10.0.0.1:5000,10.0.0.2:0", "star", new byte[0]));
        assertEquals("10.0.0.1:5000,10.0.0.2:0", tcp.addresses());
        assertEquals("star", tcp.collective());
        assertEquals(0, tcp.ncclId().length);

        byte[] id = new byte[TpProtocol.NCCL_ID_BYTES];
        for (int i = 0; i < id.length; i++) id[i] = (byte) (i * 37 - 100);  // negative bytes too
        TpProtocol.Group nccl = (TpProtocol.Group) roundTrip(new TpProtocol.Group("", "nccl", id));
        assertEquals("nccl", nccl.collective());
        assertEquals("", nccl.addresses());
        assertArrayEquals(id, nccl.ncclId());

        assertEquals(new TpProtocol.GroupJoined(""), roundTrip(new TpProtocol.GroupJoined("")));
        TpProtocol.GroupJoined failed = new TpProtocol.GroupJoined("ncclCommInitRank failed on rank 1 of 2: invalid usage (5)");
        assertEquals(failed, roundTrip(failed));
    }

    @Test
    void aGroupFrameWithTheWrongIdOrAnUnknownCollectiveIsRejected() {
        var e = assertThrows(TpProtocol.ProtocolException.class, () -> roundTrip(new TpProtocol.Group("", "nccl", new byte[64])));
        assertEquals("NCCL id of 64 bytes in a nccl group frame, expected 128", e.getMessage());
        e = assertThrows(TpProtocol.ProtocolException.class, () -> roundTrip(new TpProtocol.Group("a:1,b:2", "star", new byte[128])));
        assertEquals("NCCL id of 128 bytes in a star group frame, expected 0", e.getMessage());
        e = assertThrows(TpProtocol.ProtocolException.class, () -> roundTrip(new TpProtocol.Group("a:1,b:2", "mpi", new byte[0])));
        assertEquals("group collective 'mpi', expected star|ring|nccl", e.getMessage());
    }
}
