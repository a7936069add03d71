// A strict OCSP client on BouncyCastle (Debian's libbcpkix-java), as Java relying parties build them: a request with
// a 16-byte nonce, POSTed; the answer's signature verified against the responder certificate it carries, that
// certificate against the issuer (and its id-kp-OCSPSigning), and the nonce required back.
//
// usage: java -cp bcprov.jar:bcpkix.jar:bcutil.jar BcOcspCheck.java URL ISSUER_PEM CERT_PEM
// Prints one JSON object. Exit 0: verified and the nonce echoed; 2: verified but the nonce not echoed (what a strict
// client refuses); 1: anything else.
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.HexFormat;
import org.bouncycastle.asn1.DEROctetString;
import org.bouncycastle.asn1.ocsp.OCSPObjectIdentifiers;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateHolder;
import org.bouncycastle.cert.ocsp.BasicOCSPResp;
import org.bouncycastle.cert.ocsp.CertificateID;
import org.bouncycastle.cert.ocsp.CertificateStatus;
import org.bouncycastle.cert.ocsp.OCSPReq;
import org.bouncycastle.cert.ocsp.OCSPReqBuilder;
import org.bouncycastle.cert.ocsp.OCSPResp;
import org.bouncycastle.cert.ocsp.RevokedStatus;
import org.bouncycastle.cert.ocsp.SingleResp;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.DigestCalculatorProvider;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;

public class BcOcspCheck {
  public static void main(String[] args) throws Exception {
    Security.addProvider(new BouncyCastleProvider());
    String url = args[0];
    X509Certificate issuer = load(args[1]);
    X509Certificate cert = load(args[2]);
    DigestCalculatorProvider digests = new JcaDigestCalculatorProviderBuilder().setProvider("BC").build();
    CertificateID id = new CertificateID(digests.get(CertificateID.HASH_SHA1), new JcaX509CertificateHolder(issuer), cert.getSerialNumber());
    byte[] nonce = new byte[16];
    new SecureRandom().nextBytes(nonce);
    // extnValue holds the DER OCTET STRING of the nonce (RFC 9654 section 2.1): this constructor wraps the bytes given.
    Extension nonceExt = new Extension(OCSPObjectIdentifiers.id_pkix_ocsp_nonce, false, new DEROctetString(nonce).getEncoded());
    OCSPReq req = new OCSPReqBuilder().addRequest(id).setRequestExtensions(new Extensions(nonceExt)).build();

    HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
    c.setConnectTimeout(10_000);
    c.setReadTimeout(10_000);
    c.setDoOutput(true);
    c.setRequestMethod("POST");
    c.setRequestProperty("Content-Type", "application/ocsp-request");
    try (OutputStream out = c.getOutputStream()) {
      out.write(req.getEncoded());
    }
    byte[] body;
    try (InputStream in = c.getInputStream()) {
      body = in.readAllBytes();
    }
    OCSPResp resp = new OCSPResp(body);
    if (resp.getStatus() != OCSPResp.SUCCESSFUL) {
      System.out.println("{\"response_status\":" + resp.getStatus() + "}");
      System.exit(1);
    }
    BasicOCSPResp basic = (BasicOCSPResp) resp.getResponseObject();
    X509CertificateHolder issuerHolder = new JcaX509CertificateHolder(issuer);
    X509CertificateHolder[] certs = basic.getCerts();
    X509CertificateHolder signer = certs.length > 0 ? certs[0] : issuerHolder;
    if (!signer.equals(issuerHolder)) {
      if (!signer.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider("BC").build(issuerHolder))) fail("responder certificate not signed by the issuer");
      Extension eku = signer.getExtension(Extension.extendedKeyUsage);
      if (eku == null || !org.bouncycastle.asn1.x509.ExtendedKeyUsage.getInstance(eku.getParsedValue()).hasKeyPurposeId(KeyPurposeId.id_kp_OCSPSigning)) fail("responder lacks id-kp-OCSPSigning");
    }
    if (!basic.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider("BC").build(signer))) fail("response signature does not verify");
    SingleResp single = basic.getResponses()[0];
    if (!single.getCertID().equals(id)) fail("the response is about another certificate");
    CertificateStatus status = single.getCertStatus();
    String statusName = status == CertificateStatus.GOOD ? "good" : status instanceof RevokedStatus ? "revoked" : "unknown";
    Extension echoed = basic.getExtension(OCSPObjectIdentifiers.id_pkix_ocsp_nonce);
    byte[] echoedNonce = echoed == null ? null : DEROctetString.getInstance(echoed.getParsedValue()).getOctets();
    boolean nonceOk = echoedNonce != null && MessageDigest.isEqual(echoedNonce, nonce);
    System.out.println("{\"response_status\":0,\"signature_verified\":true,\"status\":\"" + statusName + "\",\"nonce_echoed\":" + (echoed != null)
        + ",\"nonce_ok\":" + nonceOk + ",\"produced_at\":\"" + basic.getProducedAt().toInstant() + "\",\"response_sha256\":\""
        + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body)) + "\"}");
    System.exit(nonceOk ? 0 : echoed == null ? 2 : 1);
  }

  private static X509Certificate load(String file) throws Exception {
    try (FileInputStream in = new FileInputStream(file)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  private static void fail(String why) {
    System.out.println("{\"error\":\"" + why + "\"}");
    System.exit(1);
  }
}
