package main

// sysSyncfs is syncfs(2)'s number on linux/amd64.
const sysSyncfs = 306
