"""PostgreSQL COPY BINARY streams: column descriptions, the exact decoder to Arrow, and its type mapping."""
