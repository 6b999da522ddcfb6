/**
 * The OpenSSH client setup that every script run on the deploying machine shares (the RouterOS
 * transport, the NixOS host deployer's driver): sshClient.sh, which says what it does and how a
 * script calls it. A script is its header, this, then its own file. It lives here, not inside one
 * site's folder, so that no site imports another.
 */
import { readScript } from "./shellScript";

export const sshClientScript = (): string => readScript(__dirname, "sshClient.sh");
