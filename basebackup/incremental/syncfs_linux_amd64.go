package incremental

const sysSyncfs = 306 // syncfs(2); not in package syscall's table
