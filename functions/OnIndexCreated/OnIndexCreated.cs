using ReverseImageSearch.Core.Triggers;

namespace ReverseImageSearch.Functions;

public sealed class OnIndexCreated : IAuditLogFunction
{
    public string MethodName => "";
    public Task HandleAsync(AuditLogEvent auditEvent, CancellationToken cancellationToken) => throw new NotImplementedException();
}
