package incremental

const sysSyncfs = 267 // syncfs(2); not in package syscall's table
