namespace Krustlet.Stages.Wasmtime.Native;

/// <summary>A wasmtime_error_t turned into .NET: the message is Wasmtime's own.</summary>
public class WasmtimeNativeException : Exception
{
    public WasmtimeNativeException() { }

    public WasmtimeNativeException(string message) : base(message) { }

    public WasmtimeNativeException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>
    /// Takes ownership of an error pointer (deletes it) and returns the exception it describes: a
    /// <see cref="GuestExitException"/> when the error is a WASI exit, otherwise this type.
    /// </summary>
    internal static unsafe WasmtimeNativeException FromError(nint error)
    {
        using var owned = new ErrorHandle(error);
        WasmByteVec message = default;
        NativeMethods.wasmtime_error_message(error, &message);
        var text = NativeMethods.TakeString(&message);
        int status;
        return NativeMethods.wasmtime_error_exit_status(error, &status)
            ? new GuestExitException(status, text)
            : new WasmtimeNativeException(text);
    }

    /// <summary>Throws for a non-null error pointer (taking ownership of it); does nothing for null.</summary>
    internal static void ThrowIfError(nint error)
    {
        if (error != IntPtr.Zero)
        {
            throw FromError(error);
        }
    }
}

/// <summary>The guest called WASI <c>proc_exit</c> (a C program returning from main does so too).</summary>
public sealed class GuestExitException : WasmtimeNativeException
{
    public GuestExitException() { }

    public GuestExitException(string message) : base(message) { }

    public GuestExitException(string message, Exception innerException) : base(message, innerException) { }

    public GuestExitException(int exitCode, string message) : base(message) => ExitCode = exitCode;

    public int ExitCode { get; }
}

/// <summary>The guest trapped; <see cref="Code"/> says why when Wasmtime knows a trap code.</summary>
public sealed class WasmTrapException : WasmtimeNativeException
{
    public WasmTrapException() { }

    public WasmTrapException(string message) : base(message) { }

    public WasmTrapException(string message, Exception innerException) : base(message, innerException) { }

    public WasmTrapException(WasmTrapCode? code, string message) : base(message) => Code = code;

    /// <summary>Null for a trap raised by a host function with a message of its own.</summary>
    public WasmTrapCode? Code { get; }

    /// <summary>Takes ownership of a wasm_trap_t pointer (deletes it).</summary>
    internal static unsafe WasmTrapException FromTrap(nint trap)
    {
        using var owned = new TrapHandle(trap);
        WasmByteVec message = default;
        NativeMethods.wasm_trap_message(trap, &message);
        var text = NativeMethods.TakeString(&message);
        byte code;
        return new WasmTrapException(NativeMethods.wasmtime_trap_code(trap, &code) ? (WasmTrapCode)code : null, text);
    }
}

/// <summary>wasmtime_trap_code_t (trap.h); the first codes, the ones a core-module guest can hit.</summary>
public enum WasmTrapCode : byte
{
    StackOverflow = 0,
    MemoryOutOfBounds = 1,
    HeapMisaligned = 2,
    TableOutOfBounds = 3,
    IndirectCallToNull = 4,
    BadSignature = 5,
    IntegerOverflow = 6,
    IntegerDivisionByZero = 7,
    BadConversionToInteger = 8,
    UnreachableCodeReached = 9,
    Interrupt = 10,
    OutOfFuel = 11,
}
