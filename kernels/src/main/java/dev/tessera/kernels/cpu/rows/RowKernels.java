package dev.tessera.kernels.cpu.rows;

import dev.tessera.kernels.TensorType;

/** The row kernel for each computable tensor type. Kernels are stateless, so one instance per type is shared. */
public final class RowKernels {
    private static final RowKernel F32 = new F32Rows();
    private static final RowKernel F16 = new F16Rows();
    private static final RowKernel BF16 = new Bf16Rows();
    private static final RowKernel Q8_0 = new Q8_0Rows();
    private static final RowKernel Q4_0 = new Q4_0Rows();
    private static final RowKernel Q4_1 = new Q4_1Rows();
    private static final RowKernel Q5_0 = new Q5_0Rows();
    private static final RowKernel Q5_1 = new Q5_1Rows();
    private static final RowKernel Q2_K = new Q2KRows();
    private static final RowKernel Q3_K = new Q3KRows();
    private static final RowKernel Q4_K = new Q4KRows();
    private static final RowKernel Q5_K = new Q5KRows();
    private static final RowKernel Q6_K = new Q6KRows();
    private static final RowKernel IQ4_NL = new IQ4NLRows();
    private static final RowKernel IQ4_XS = new IQ4XSRows();

    private RowKernels() {}

    /** Returns the kernel for {@code type}; throws IllegalArgumentException for types Tessera cannot compute with. */
    public static RowKernel forType(TensorType type) {
        return switch (type) {
            case F32 -> F32;
            case F16 -> F16;
            case BF16 -> BF16;
            case Q8_0 -> Q8_0;
            case Q4_0 -> Q4_0;
            case Q4_1 -> Q4_1;
            case Q5_0 -> Q5_0;
            case Q5_1 -> Q5_1;
            case Q2_K -> Q2_K;
            case Q3_K -> Q3_K;
            case Q4_K -> Q4_K;
            case Q5_K -> Q5_K;
            case Q6_K -> Q6_K;
            case IQ4_NL -> IQ4_NL;
            case IQ4_XS -> IQ4_XS;
            default -> throw new IllegalArgumentException("no row kernel for tensor type " + type + ": expected one of "
                    + TensorType.computableNames());
        };
    }
}
