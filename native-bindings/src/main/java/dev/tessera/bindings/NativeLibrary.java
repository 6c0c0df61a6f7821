package dev.tessera.bindings;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Optional;

/**
 * One native library that may be missing. Bindings build each downcall handle once from it; when the library or the
 * symbol is missing the handle they get throws {@link LibraryUnavailableException} on every call instead, so binding
 * classes load (and their holders initialise) without a GPU, and every call reports the same one-line reason rather
 * than an {@code ExceptionInInitializerError} followed by {@code NoClassDefFoundError}s.
 */
public final class NativeLibrary {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle NEW_EXCEPTION;

    static {
        try {
            NEW_EXCEPTION = MethodHandles.lookup().findConstructor(LibraryUnavailableException.class,
                    MethodType.methodType(void.class, String.class));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    private final String api;
    private final String fileName;
    private final SymbolLookup lookup;
    private final String failure;

    private NativeLibrary(String api, String fileName, SymbolLookup lookup, String failure) {
        this.api = api;
        this.fileName = fileName;
        this.lookup = lookup;
        this.failure = failure;
    }

    /** Finds and opens the first of {@code fileNames} (see {@link NativeLibraries}); never throws. */
    public static NativeLibrary open(String api, String... fileNames) {
        return open(api, fileNames, new String[fileNames.length]);
    }

    /** @param companions per file name, a library to open first from the same folder (or null), e.g. cuBLASLt for cuBLAS */
    public static NativeLibrary open(String api, String[] fileNames, String[] companions) {
        try {
            NativeLibraries.Found found = NativeLibraries.load(api, fileNames, companions);
            return new NativeLibrary(api, found.path(), found.lookup(), null);
        } catch (LibraryUnavailableException e) {
            return new NativeLibrary(api, fileNames[0], null, e.getMessage());
        }
    }

    public boolean available() {
        return lookup != null;
    }

    /** Where the library was loaded from, or the reason it was not. */
    public String describe() {
        return lookup != null ? fileName : failure;
    }

    /** A downcall handle for {@code symbol}, or one that throws LibraryUnavailableException when called. */
    public MethodHandle downcall(String symbol, FunctionDescriptor descriptor) {
        if (lookup == null) return throwing(failure, descriptor);
        Optional<MemorySegment> address = lookup.find(symbol);
        if (address.isEmpty())
            return throwing(api + " unavailable: " + fileName + " has no symbol " + symbol + " (the installed driver or library is older than these bindings)", descriptor);
        return LINKER.downcallHandle(address.get(), descriptor);
    }

    private static MethodHandle throwing(String message, FunctionDescriptor descriptor) {
        MethodType type = descriptor.toMethodType();
        MethodHandle make = MethodHandles.insertArguments(NEW_EXCEPTION, 0, message);
        MethodHandle thrower = MethodHandles.throwException(type.returnType(), LibraryUnavailableException.class);
        MethodHandle h = MethodHandles.collectArguments(thrower, 0, make);
        return MethodHandles.dropArguments(h, 0, type.parameterList());
    }
}
