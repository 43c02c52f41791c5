namespace ReverseImageSearch.Core.Ports;

/// <summary>
/// A field value that, written with <see cref="SetMode.Merge"/>, removes the field
/// (Firestore's FieldValue.delete()).
/// </summary>
public sealed class FieldDelete
{
    public static readonly FieldDelete Value = new();

    private FieldDelete()
    {
    }
}
