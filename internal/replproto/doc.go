// Package replproto holds the pure pieces of the PostgreSQL replication
// protocol that the base-backup client needs: the BASE_BACKUP command builder
// for both protocol generations (13–14 legacy keywords, 15+ parenthesised
// options), string quoting, and parsers for the typed CopyData messages
// (15+) and the result sets BASE_BACKUP sends. Nothing here does I/O.
package replproto
