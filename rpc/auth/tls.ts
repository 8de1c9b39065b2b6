import { readFileSync } from "node:fs";
import { invalidArgument } from "../../core/errors.js";

/** Where a process finds its certificate, its key and the CA it trusts (PEM files). */
export interface TlsFiles {
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly ca: string | undefined;
}

/** The PEM material itself, read once at start. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
  /** The certificate's path, for log lines and errors. */
  readonly certPath: string;
}

/** What a client needs: the CA to verify the server, and a certificate of its own unless it uses a token. */
export interface ClientTlsMaterial {
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
  readonly ca: Buffer;
}

/**
 * Reads the three TLS files, or returns undefined when none is set. They go
 * together: a certificate without the CA could not verify its peers, and a
 * CA without a certificate could not prove who we are.
 */
export function loadTls(files: TlsFiles): TlsMaterial | undefined {
  const given = (["cert", "key", "ca"] as const).filter((k) => files[k]);
  if (given.length === 0) return undefined;
  if (given.length < 3) {
    const missing = (["cert", "key", "ca"] as const).filter((k) => !files[k]).map((k) => `--tls-${k}`);
    throw invalidArgument(`--tls-cert, --tls-key and --tls-ca go together; missing ${missing.join(" and ")}`);
  }
  return { cert: readPem(files, "cert"), key: readPem(files, "key"), ca: readPem(files, "ca"), certPath: files.cert! };
}

/**
 * A client's TLS files: --tls-ca alone verifies the server (a token holder
 * needs no certificate); --tls-cert and --tls-key go together.
 */
export function loadClientTls(files: TlsFiles): ClientTlsMaterial | undefined {
  if (!files.cert && !files.key && !files.ca) return undefined;
  if (Boolean(files.cert) !== Boolean(files.key)) throw invalidArgument(`--tls-cert and --tls-key go together; missing ${files.cert ? "--tls-key" : "--tls-cert"}`);
  if (!files.ca) throw invalidArgument("--tls-ca is required with --tls-cert: it is how the server's certificate is verified");
  return { cert: files.cert ? readPem(files, "cert") : undefined, key: files.key ? readPem(files, "key") : undefined, ca: readPem(files, "ca") };
}

function readPem(files: TlsFiles, k: "cert" | "key" | "ca"): Buffer {
  const file = files[k]!;
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw invalidArgument(`--tls-${k} ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`);
  }
  if (!pem.includes("-----BEGIN ")) throw invalidArgument(`--tls-${k} ${file} is not a PEM file (no "-----BEGIN" line)`);
  return pem;
}
