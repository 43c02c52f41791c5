using System.Diagnostics.Metrics;
using ReverseImageSearch.Core;

namespace ReverseImageSearch.Tests.Local.VectorIndex;

/// <summary>
/// The <see cref="Telemetry.IndexRowsScored"/> values recorded by the searches this test runs, from the moment it is
/// made: one value per exact query. Values recorded by other flows (another test's host still winding down) are left
/// out, so the counts are this test's own.
/// </summary>
internal sealed class RowsScored : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly AsyncLocal<bool> _ownFlow = new() { Value = true };
    private long _queries;
    private long _rows;

    public RowsScored()
    {
        // Telemetry's fields first: an instrument published while its class is still initialising is compared
        // with a field not yet assigned (null), and would never be listened to when this is the process's first test.
        System.Runtime.CompilerServices.RuntimeHelpers.RunClassConstructor(typeof(Telemetry).TypeHandle);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument, Telemetry.IndexRowsScored))
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, _, _) =>
        {
            if (_ownFlow.Value)
            {
                Interlocked.Increment(ref _queries);
                Interlocked.Add(ref _rows, value);
            }
        });
        _listener.Start();
    }

    /// <summary>Exact queries answered through the int8 filter (or found nothing to filter) so far.</summary>
    public long Queries => Interlocked.Read(ref _queries);

    /// <summary>Float32 rows those queries scored.</summary>
    public long Rows => Interlocked.Read(ref _rows);

    public double MeanRows => Queries == 0 ? 0 : Rows / (double)Queries;

    public void Dispose() => _listener.Dispose();
}
