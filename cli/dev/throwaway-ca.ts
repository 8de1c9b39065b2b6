import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { HaError, ErrorCode } from "../../core/errors.js";

const run = promisify(execFile);

/** One certificate the CA issued: its files and what it names. */
export interface IssuedCertificate {
  readonly cert: string;
  readonly key: string;
  readonly cn: string;
  readonly ou: string;
}

export interface ThrowawayCa {
  readonly dir: string;
  /** The CA certificate every process trusts. */
  readonly ca: string;
  issue(cn: string, ou: "agent" | "coordinator" | "admin" | "read"): Promise<IssuedCertificate>;
}

/**
 * A CA made on the spot with openssl, for `autonomy dev --secure` and the
 * tests: every certificate it issues names localhost and 127.0.0.1 and may
 * serve and connect (an agent does both). The same commands, step by step,
 * are in docs/security.md.
 */
export async function makeThrowawayCa(dir: string, days = 30): Promise<ThrowawayCa> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = join(dir, "ca.crt");
  const caKey = join(dir, "ca.key");
  await openssl([
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", caKey, "-out", ca, "-days", String(days), "-subj", "/CN=autonomy throwaway CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  const ext = join(dir, "leaf.ext");
  await writeFile(ext, [
    "basicConstraints = CA:FALSE",
    "keyUsage = critical, digitalSignature, keyEncipherment",
    "extendedKeyUsage = serverAuth, clientAuth",
    "subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1",
    "",
  ].join("\n"));
  let serial = 1;
  return {
    dir,
    ca,
    async issue(cn, ou) {
      const base = join(dir, `${cn}.${ou}`);
      const key = `${base}.key`;
      const cert = `${base}.crt`;
      await openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", `${base}.csr`, "-subj", `/CN=${cn}/OU=${ou}`]);
      await openssl(["x509", "-req", "-in", `${base}.csr`, "-CA", ca, "-CAkey", caKey, "-set_serial", String(Date.now() * 100 + serial++), "-out", cert, "-days", String(days), "-extfile", ext]);
      return { cert, key, cn, ou };
    },
  };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args, { timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new HaError(ErrorCode.FailedPrecondition, "openssl is not installed; install it (Debian/Ubuntu: apt-get install openssl) to make certificates");
    throw new HaError(ErrorCode.Internal, `openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}
