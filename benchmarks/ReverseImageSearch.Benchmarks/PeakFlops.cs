using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ReverseImageSearch.Benchmarks;

/// <summary>
/// Measured float32 FMA peak of this CPU: independent fused multiply-adds on the widest vectors the JIT has,
/// on each of N threads for a fixed time. This is the "compute bound" measured at the real clock rather than a
/// datasheet figure (the VM hides its model and turbo clock).
/// </summary>
internal static class PeakFlops
{
    public static int Run(Cli cli)
    {
        var threads = cli.Int("threads", Environment.ProcessorCount);
        var seconds = cli.Double("seconds", 1.0);
        var lanes = Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : 4;
        long[] iterations = new long[threads];
        var stopwatch = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() => iterations[t] = Spin(seconds, lanes)) { IsBackground = true }).ToArray();
        foreach (var worker in workers)
        {
            worker.Start();
        }

        foreach (var worker in workers)
        {
            worker.Join();
        }

        var elapsed = stopwatch.Elapsed.TotalSeconds;
        // Each iteration: 12 independent FMAs of `lanes` floats, 2 flops each.
        var flops = iterations.Sum() * 12.0 * lanes * 2;
        cli.Emit(new { threads, lanes, seconds = elapsed, gflops = Math.Round(flops / elapsed / 1e9, 1) });
        return 0;
    }

    // Fully optimised from the first call: at tier 0 the vector locals would live in memory.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long Spin(double seconds, int lanes)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        long count = 0;
        if (lanes == 16)
        {
            var a = Vector512.Create(1.0000001f);
            var b = Vector512.Create(0.9999999f);
            Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default;
            Vector512<float> s6 = default, s7 = default, s8 = default, s9 = default, s10 = default, s11 = default;
            while (Stopwatch.GetTimestamp() < deadline)
            {
                for (var i = 0; i < 4096; i++)
                {
                    s0 = Vector512.FusedMultiplyAdd(s0, a, b); s1 = Vector512.FusedMultiplyAdd(s1, a, b);
                    s2 = Vector512.FusedMultiplyAdd(s2, a, b); s3 = Vector512.FusedMultiplyAdd(s3, a, b);
                    s4 = Vector512.FusedMultiplyAdd(s4, a, b); s5 = Vector512.FusedMultiplyAdd(s5, a, b);
                    s6 = Vector512.FusedMultiplyAdd(s6, a, b); s7 = Vector512.FusedMultiplyAdd(s7, a, b);
                    s8 = Vector512.FusedMultiplyAdd(s8, a, b); s9 = Vector512.FusedMultiplyAdd(s9, a, b);
                    s10 = Vector512.FusedMultiplyAdd(s10, a, b); s11 = Vector512.FusedMultiplyAdd(s11, a, b);
                }

                count += 4096;
            }

            GC.KeepAlive(Vector512.Sum(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + s10 + s11));
        }
        else
        {
            var a = Vector256.Create(1.0000001f);
            var b = Vector256.Create(0.9999999f);
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default;
            Vector256<float> s6 = default, s7 = default, s8 = default, s9 = default, s10 = default, s11 = default;
            while (Stopwatch.GetTimestamp() < deadline)
            {
                for (var i = 0; i < 4096; i++)
                {
                    s0 = Vector256.FusedMultiplyAdd(s0, a, b); s1 = Vector256.FusedMultiplyAdd(s1, a, b);
                    s2 = Vector256.FusedMultiplyAdd(s2, a, b); s3 = Vector256.FusedMultiplyAdd(s3, a, b);
                    s4 = Vector256.FusedMultiplyAdd(s4, a, b); s5 = Vector256.FusedMultiplyAdd(s5, a, b);
                    s6 = Vector256.FusedMultiplyAdd(s6, a, b); s7 = Vector256.FusedMultiplyAdd(s7, a, b);
                    s8 = Vector256.FusedMultiplyAdd(s8, a, b); s9 = Vector256.FusedMultiplyAdd(s9, a, b);
                    s10 = Vector256.FusedMultiplyAdd(s10, a, b); s11 = Vector256.FusedMultiplyAdd(s11, a, b);
                }

                count += 4096;
            }

            GC.KeepAlive(Vector256.Sum(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + s10 + s11));
        }

        return count;
    }
}
