using System.Runtime.InteropServices;
using System.Text;

namespace Krustlet.Stages.Tests.Support;

/// <summary>
/// A WASI 0.2 command component that uses <c>wasi:sockets</c>, written in the component model's text
/// format (no component toolchain is packaged for Debian) and assembled by Wasmtime's own parser
/// (<c>wasmtime_wat2wasm</c> in the libwasmtime the Wasmtime package ships, which reads components as
/// well as core modules). Its <c>run</c> resolves <c>localhost</c> with <c>ip-name-lookup</c>, then
/// opens a TCP connection to 127.0.0.1 on the given port (create-tcp-socket, start-connect, block on
/// the socket's pollable, finish-connect), and says on stdout how each step went:
/// <c>resolved localhost</c> or <c>resolve-addresses failed: error-code NN</c> (NN the
/// <c>wasi:sockets/network.error-code</c> case), then <c>connected</c> or
/// <c>create-tcp-socket|start-connect|finish-connect failed: error-code NN</c>. It returns ok only
/// when it connected. The imported interfaces declare only what it calls, in wit-component's shape
/// (named types exported from each instance type, used resources re-exported with <c>eq</c>).
/// </summary>
internal static partial class SocketComponent
{
    /// <summary>wasi:sockets/network's error-code, in order (its cases are numbered from 0).</summary>
    private const string ErrorCode = """(enum "unknown" "access-denied" "not-supported" "invalid-argument" "out-of-memory" "timeout" "concurrency-conflict" "not-in-progress" "would-block" "invalid-state" "new-socket-limit" "address-not-bindable" "address-in-use" "remote-unreachable" "connection-refused" "connection-reset" "connection-aborted" "datagram-too-large" "name-unresolvable" "temporary-resolver-failure" "permanent-resolver-failure")""";

    /// <summary>error-code 1.</summary>
    public const int AccessDenied = 1;

    /// <summary>error-code 20.</summary>
    public const int PermanentResolverFailure = 20;

    /// <summary>Writes the component that connects to 127.0.0.1:<paramref name="port"/> to a file; returns its path.</summary>
    public static string ResolvingThenConnecting(int port) => WasmFixtures.File(Assemble($$"""
        (component
          (import "wasi:io/error@0.2.0" (instance $error
            (export "error" (type (sub resource)))
          ))
          (alias export $error "error" (type $error-res))
          (import "wasi:io/poll@0.2.0" (instance $poll
            (export "pollable" (type $p (sub resource)))
            (export "[method]pollable.block" (func (param "self" (borrow $p))))
          ))
          (alias export $poll "pollable" (type $pollable))
          (import "wasi:io/streams@0.2.0" (instance $streams
            (alias outer 1 $error-res (type $e0))
            (export "error" (type $e (eq $e0)))
            (export "input-stream" (type (sub resource)))
            (export "output-stream" (type $os (sub resource)))
            (type $stream-error (variant (case "last-operation-failed" (own $e)) (case "closed")))
            (export "stream-error" (type $se (eq $stream-error)))
            (export "[method]output-stream.blocking-write-and-flush" (func (param "self" (borrow $os)) (param "contents" (list u8)) (result (result (error $se)))))
          ))
          (alias export $streams "input-stream" (type $input-stream))
          (alias export $streams "output-stream" (type $output-stream))
          (import "wasi:cli/stdout@0.2.0" (instance $stdout
            (alias outer 1 $output-stream (type $os0))
            (export "output-stream" (type $os (eq $os0)))
            (export "get-stdout" (func (result (own $os))))
          ))
          (import "wasi:sockets/network@0.2.0" (instance $network
            (export "network" (type (sub resource)))
          ))
          (alias export $network "network" (type $network-res))
          (import "wasi:sockets/instance-network@0.2.0" (instance $instance-network
            (alias outer 1 $network-res (type $n0))
            (export "network" (type $n (eq $n0)))
            (export "instance-network" (func (result (own $n))))
          ))
          (import "wasi:sockets/ip-name-lookup@0.2.0" (instance $ip-name-lookup
            (alias outer 1 $pollable (type $p0))
            (export "pollable" (type $p (eq $p0)))
            (alias outer 1 $network-res (type $n0))
            (export "network" (type $n (eq $n0)))
            (type $error-code {{ErrorCode}})
            (export "error-code" (type $ec (eq $error-code)))
            (type $ip-address (variant (case "ipv4" (tuple u8 u8 u8 u8)) (case "ipv6" (tuple u16 u16 u16 u16 u16 u16 u16 u16))))
            (export "ip-address" (type $ia (eq $ip-address)))
            (export "resolve-address-stream" (type $ras (sub resource)))
            (export "[method]resolve-address-stream.resolve-next-address" (func (param "self" (borrow $ras)) (result (result (option $ia) (error $ec)))))
            (export "[method]resolve-address-stream.subscribe" (func (param "self" (borrow $ras)) (result (own $p))))
            (export "resolve-addresses" (func (param "network" (borrow $n)) (param "name" string) (result (result (own $ras) (error $ec)))))
          ))
          (import "wasi:sockets/tcp@0.2.0" (instance $tcp
            (alias outer 1 $network-res (type $n0))
            (export "network" (type $n (eq $n0)))
            (alias outer 1 $input-stream (type $is0))
            (export "input-stream" (type $is (eq $is0)))
            (alias outer 1 $output-stream (type $os0))
            (export "output-stream" (type $os (eq $os0)))
            (alias outer 1 $pollable (type $p0))
            (export "pollable" (type $p (eq $p0)))
            (type $error-code {{ErrorCode}})
            (export "error-code" (type $ec (eq $error-code)))
            (type $ipv4-address (tuple u8 u8 u8 u8))
            (type $ipv6-address (tuple u16 u16 u16 u16 u16 u16 u16 u16))
            (type $ipv4-socket-address (record (field "port" u16) (field "address" $ipv4-address)))
            (export "ipv4-socket-address" (type $v4 (eq $ipv4-socket-address)))
            (type $ipv6-socket-address (record (field "port" u16) (field "flow-info" u32) (field "address" $ipv6-address) (field "scope-id" u32)))
            (export "ipv6-socket-address" (type $v6 (eq $ipv6-socket-address)))
            (type $ip-socket-address (variant (case "ipv4" $v4) (case "ipv6" $v6)))
            (export "ip-socket-address" (type $isa (eq $ip-socket-address)))
            (export "tcp-socket" (type $sock (sub resource)))
            (export "[method]tcp-socket.start-connect" (func (param "self" (borrow $sock)) (param "network" (borrow $n)) (param "remote-address" $isa) (result (result (error $ec)))))
            (export "[method]tcp-socket.finish-connect" (func (param "self" (borrow $sock)) (result (result (tuple (own $is) (own $os)) (error $ec)))))
            (export "[method]tcp-socket.subscribe" (func (param "self" (borrow $sock)) (result (own $p))))
          ))
          (alias export $tcp "tcp-socket" (type $tcp-socket))
          (import "wasi:sockets/tcp-create-socket@0.2.0" (instance $tcp-create-socket
            (alias outer 1 $tcp-socket (type $s0))
            (export "tcp-socket" (type $s (eq $s0)))
            (type $error-code {{ErrorCode}})
            (export "error-code" (type $ec (eq $error-code)))
            (type $family (enum "ipv4" "ipv6"))
            (export "ip-address-family" (type $f (eq $family)))
            (export "create-tcp-socket" (func (param "address-family" $f) (result (result (own $s) (error $ec)))))
          ))

          (core module $memory (memory (export "memory") 1))
          (core instance $memory (instantiate $memory))
          (alias core export $memory "memory" (core memory $mem))

          (core func $block (canon lower (func $poll "[method]pollable.block")))
          (core func $write (canon lower (func $streams "[method]output-stream.blocking-write-and-flush") (memory $mem)))
          (core func $get-stdout (canon lower (func $stdout "get-stdout")))
          (core func $instance-network (canon lower (func $instance-network "instance-network")))
          (core func $create (canon lower (func $tcp-create-socket "create-tcp-socket") (memory $mem)))
          (core func $start-connect (canon lower (func $tcp "[method]tcp-socket.start-connect") (memory $mem)))
          (core func $finish-connect (canon lower (func $tcp "[method]tcp-socket.finish-connect") (memory $mem)))
          (core func $subscribe (canon lower (func $tcp "[method]tcp-socket.subscribe")))
          (core func $resolve (canon lower (func $ip-name-lookup "resolve-addresses") (memory $mem)))
          (core func $resolve-next (canon lower (func $ip-name-lookup "[method]resolve-address-stream.resolve-next-address") (memory $mem)))
          (core func $resolve-subscribe (canon lower (func $ip-name-lookup "[method]resolve-address-stream.subscribe")))
          (core instance $host
            (export "memory" (memory $mem))
            (export "block" (func $block))
            (export "write" (func $write))
            (export "get-stdout" (func $get-stdout))
            (export "instance-network" (func $instance-network))
            (export "create-tcp-socket" (func $create))
            (export "start-connect" (func $start-connect))
            (export "finish-connect" (func $finish-connect))
            (export "subscribe" (func $subscribe))
            (export "resolve" (func $resolve))
            (export "resolve-next" (func $resolve-next))
            (export "resolve-subscribe" (func $resolve-subscribe))
          )

          (core module $main
            (import "host" "memory" (memory 1))
            (import "host" "block" (func $block (param i32)))
            (import "host" "write" (func $write (param i32 i32 i32 i32)))
            (import "host" "get-stdout" (func $get-stdout (result i32)))
            (import "host" "instance-network" (func $instance-network (result i32)))
            (import "host" "create-tcp-socket" (func $create (param i32 i32)))
            (import "host" "start-connect" (func $start-connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
            (import "host" "finish-connect" (func $finish-connect (param i32 i32)))
            (import "host" "subscribe" (func $subscribe (param i32) (result i32)))
            (import "host" "resolve" (func $resolve (param i32 i32 i32 i32)))
            (import "host" "resolve-next" (func $resolve-next (param i32 i32)))
            (import "host" "resolve-subscribe" (func $resolve-subscribe (param i32) (result i32)))
            (data (i32.const 224) "localhost")
            (data (i32.const 240) "resolve-addresses failed: error-code ")
            (data (i32.const 288) "resolve-next-address failed: error-code ")
            (data (i32.const 336) "resolved localhost\n")
            ;; 0..15: results; 16..19: digits; messages from 64.
            (data (i32.const 64) "connected\n")
            (data (i32.const 80) "create-tcp-socket failed: error-code ")
            (data (i32.const 128) "start-connect failed: error-code ")
            (data (i32.const 176) "finish-connect failed: error-code ")
            (func $say (param $at i32) (param $len i32)
              (call $write (call $get-stdout) (local.get $at) (local.get $len) (i32.const 0)))
            (func $fail (param $at i32) (param $len i32) (param $code i32) (result i32)
              (call $say (local.get $at) (local.get $len))
              (i32.store8 (i32.const 16) (i32.add (i32.const 48) (i32.div_u (local.get $code) (i32.const 10))))
              (i32.store8 (i32.const 17) (i32.add (i32.const 48) (i32.rem_u (local.get $code) (i32.const 10))))
              (i32.store8 (i32.const 18) (i32.const 10))
              (call $say (i32.const 16) (i32.const 3))
              (i32.const 1))
            (func (export "run") (result i32)
              (local $network i32) (local $socket i32)
              (local $stream i32)
              (local.set $network (call $instance-network))
              (call $resolve (local.get $network) (i32.const 224) (i32.const 9) (i32.const 0))
              (if (i32.load8_u (i32.const 0)) (then (drop (call $fail (i32.const 240) (i32.const 37) (i32.load8_u (i32.const 4)))))
                (else
                  (local.set $stream (i32.load (i32.const 4)))
                  (call $block (call $resolve-subscribe (local.get $stream)))
                  (call $resolve-next (local.get $stream) (i32.const 0))
                  (if (i32.load8_u (i32.const 0)) (then (drop (call $fail (i32.const 288) (i32.const 40) (i32.load8_u (i32.const 2)))))
                    (else (call $say (i32.const 336) (i32.const 19))))))
              (call $create (i32.const 0) (i32.const 0))
              (if (i32.load8_u (i32.const 0)) (then (return (call $fail (i32.const 80) (i32.const 37) (i32.load8_u (i32.const 4))))))
              (local.set $socket (i32.load (i32.const 4)))
              (call $start-connect (local.get $socket) (local.get $network)
                (i32.const 0) (i32.const {{port}}) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1)
                (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                (i32.const 0))
              (if (i32.load8_u (i32.const 0)) (then (return (call $fail (i32.const 128) (i32.const 33) (i32.load8_u (i32.const 1))))))
              (call $block (call $subscribe (local.get $socket)))
              (call $finish-connect (local.get $socket) (i32.const 0))
              (if (i32.load8_u (i32.const 0)) (then (return (call $fail (i32.const 176) (i32.const 34) (i32.load8_u (i32.const 4))))))
              (call $say (i32.const 64) (i32.const 10))
              (i32.const 0))
          )
          (core instance $main (instantiate $main (with "host" (instance $host))))

          (type $run-result (result))
          (func $run (result $run-result) (canon lift (core func $main "run")))
          (instance $run-instance (export "run" (func $run)))
          (export "wasi:cli/run@0.2.0" (instance $run-instance))
        )
        """));

    /// <summary>The binary of a component (or core module) in WebAssembly text.</summary>
    public static byte[] Assemble(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        var error = wasmtime_wat2wasm(utf8, (nuint)utf8.Length, out var binary);
        if (error != IntPtr.Zero)
        {
            wasmtime_error_message(error, out var message);
            var why = Copy(message);
            wasm_byte_vec_delete(ref message);
            wasmtime_error_delete(error);
            throw new InvalidOperationException($"the text does not assemble: {Encoding.UTF8.GetString(why)}");
        }

        var bytes = Copy(binary);
        wasm_byte_vec_delete(ref binary);
        return bytes;
    }

    private static byte[] Copy(ByteVec vec)
    {
        var bytes = new byte[checked((int)vec.Size)];
        Marshal.Copy(vec.Data, bytes, 0, bytes.Length);
        return bytes;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct ByteVec
    {
        public nuint Size;
        public nint Data;
    }

    [LibraryImport("wasmtime")]
    private static partial nint wasmtime_wat2wasm(byte[] wat, nuint length, out ByteVec result);

    [LibraryImport("wasmtime")]
    private static partial void wasmtime_error_message(nint error, out ByteVec message);

    [LibraryImport("wasmtime")]
    private static partial void wasmtime_error_delete(nint error);

    [LibraryImport("wasmtime")]
    private static partial void wasm_byte_vec_delete(ref ByteVec vec);
}
